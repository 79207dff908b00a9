"""`mmgen demo`: a small, realistic demo data set, seeded through the services' public HTTP APIs.

Only the APIs a frontend or an operator would call — never a service's database — so the demo
data is exactly what the system records for real users: events, read models and an audit log
that compliance staff can query and verify (`mmgen audit verify`).

- Accounts (an admin, staff, compliance, clients, creators) get random passwords generated on
  the first run and kept in `<state>/demo/accounts.json` (0600, never in the repository). The
  first admin is created like `mmgen admin create` does, with the `admin-cli` secret that
  identity leaves in the state folder; staff and compliance by that admin; clients and
  creators register themselves. Admin, staff and compliance reach personal data only with a
  second factor: on their first sign-in they enrol TOTP, and the secret (with the recovery
  codes and the steps already used) is kept beside the password, so `mmgen demo token` and
  anyone with the file can sign them in (an authenticator app takes `totp_secret` too).
- Idempotent: an account that exists is signed into with its stored password; a consent is
  decided only for a purpose the subject has not decided yet; one-off actions (a staff read,
  a tracking event) are remembered by the ids they touched, so a second run adds nothing.
- Only services that run are seeded (the stack record says which; `mmgen up` starts what
  `stack.discover_services()` finds): identity is needed, consent adds policies, consents
  and the audit log; profiles, projects and retention add theirs (`demo_services`).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mmgen.cli import stack
from mmgen.cli.admin import AdminError, cli_credentials, describe_problem, service_client
from mmgen.cli.demo_services import STEPS as SERVICE_STEPS
from mmgen.cli.local_witness import WITNESS
from mmgen.platform.totp import Authenticator

DEMO_DIR = "demo"
ACCOUNTS_FILE = "accounts.json"
PUBLIC_KEY_FILE = "audit-public-key.txt"
WITNESS_KEY_FILE = "witness-public-key.txt"
DOMAIN = "demo.mmgen.example"  # RFC 2606 reserved: never a real mailbox
POLICY_VERSION = "demo-1"
POLICY_TITLE = "Multimedia Gen privacy policy (demo)"
POLICY_TEXT = """\
We collect your name, phone, email and business details; project requirements, files and
messages; and usage data. Project data is accessible only to the team members of that
project. We do not sell personal data; we share it only for project execution, legal
compliance and payment processing. Sensitive creator data is never public without consent.
Analytics run only with your consent, and Global Privacy Control is honoured. We keep data
only as long as necessary. You may access, correct and delete your data, and withdraw
consent at any time.
"""
AUDIT_WAIT_SECONDS = 60.0
#: Services this module has demo steps for (others that run are reported as not seeded).
SEEDED_SERVICES = ("identity", "consent", "profiles", "projects", "retention")
#: Services that hold no data of their own to seed (the witness only cosigns the log's heads;
#: the console reads the others' data with the officer's token).
NOTHING_TO_SEED = ("witness", "console")
PASSWORD_ALPHABET = string.ascii_letters + string.digits
#: Roles that must sign in with a one-time code to reach personal data.
SECOND_FACTOR_ROLES = ("admin", "staff", "compliance")

demo_app = typer.Typer(
    help="Seed demo data into a running stack (or: mmgen up --demo); demo tokens.",
    invoke_without_command=True,
)
console = Console()
err = Console(stderr=True)

StateDir = Annotated[
    Path,
    typer.Option("--state-dir", envvar="MMGEN_STATE_DIR", help="local state of `mmgen up`"),
]


class DemoError(Exception):
    """Something the person running the demo must fix (printed as is)."""


@dataclass(frozen=True)
class DemoAccount:
    key: str
    role: str
    name: str
    phone: str | None = None
    business: dict[str, str] | None = None

    @property
    def email(self) -> str:
        return f"{self.key}@{DOMAIN}"


ACCOUNTS = (
    DemoAccount("admin", "admin", "Alex Admin"),
    DemoAccount("staff", "staff", "Sam Support"),
    DemoAccount("compliance", "compliance", "Casey Compliance"),
    DemoAccount(
        "client.acme",
        "client",
        "Ada Lindqvist",
        phone="+46 8 555 0101",
        business={
            "company_name": "Acme Studio AB",
            "vat_number": "SE556677889901",
            "address": "Sveavägen 12, 111 57 Stockholm",
        },
    ),
    DemoAccount(
        "client.northwind",
        "client",
        "Noor Haddad",
        phone="+44 20 7946 0958",
        business={"company_name": "Northwind Events Ltd", "address": "1 Dock Road, London"},
    ),
    DemoAccount("creator.mia", "creator", "Mia Rossi", phone="+39 02 5550 1234"),
    DemoAccount("creator.leo", "creator", "Leo Martin", phone="+33 1 5550 9876"),
    DemoAccount("creator.zoe", "creator", "Zoe Okafor"),
)
BY_KEY = {account.key: account for account in ACCOUNTS}

#: Decisions per account, in order; applied only for purposes the subject has not decided.
CONSENTS: dict[str, list[tuple[str, bool]]] = {
    "creator.mia": [("profile.sensitive_sharing", True), ("cookies.analytics", True)],
    "creator.leo": [("marketing.email", True), ("marketing.email", False)],  # changed her mind
    "creator.zoe": [("cookies.analytics", True)],
    "client.acme": [("cookies.analytics", True), ("data.sale_sharing", False)],
}


def new_password(length: int = 20) -> str:
    """Random letters and digits (~119 bits): nothing to escape in a shell or a form."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


@dataclass
class DemoState:
    """`<state>/demo/accounts.json`: generated passwords, user ids, one-off steps done."""

    path: Path
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, state_dir: Path) -> DemoState:
        path = state_dir / DEMO_DIR / ACCOUNTS_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        return cls(path, dict(raw.get("accounts", {})), list(raw.get("done", [])))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"accounts": self.accounts, "done": self.done}, handle, indent=2)
        tmp.replace(self.path)

    def account(self, spec: DemoAccount) -> dict[str, Any]:
        """The stored record of a demo account; a new random password on first use."""
        record = self.accounts.get(spec.key)
        if record is None:
            record = {
                "email": spec.email,
                "password": new_password(),
                "role": spec.role,
                "name": spec.name,
                "user_id": None,
            }
            self.accounts[spec.key] = record
            self.save()
        return record

    def once(self, step: str, action: Callable[[], object]) -> None:
        if step in self.done:
            return
        action()
        self.done.append(step)
        self.save()


def running_services(state_dir: Path) -> dict[str, str]:
    """Base URL of every service the stack recorded in `state_dir` that still runs."""
    config = stack.StackConfig(state_dir=state_dir)
    services = {
        c.name: f"http://{c.address}"
        for c in stack.running_components(config)
        if c.kind == "service"
    }
    if not services:
        raise DemoError(
            f"no running stack is recorded in {state_dir}: start one with `mmgen up --demo`, "
            "or `mmgen up --detach` and then `mmgen demo`"
        )
    if "identity" not in services:
        raise DemoError("identity is not running: the demo accounts need it")
    return services


class Seeder:
    """One run of the demo against running services."""

    def __init__(
        self, state_dir: Path, urls: dict[str, str], say: Callable[[str], None] | None = None
    ) -> None:
        self.state_dir = state_dir
        self.urls = urls
        self.state = DemoState.load(state_dir)
        self.http = httpx.Client(timeout=30.0)
        self.tokens: dict[str, str] = {}
        self.say = say or (lambda _: None)

    def close(self) -> None:
        self.http.close()

    # --- HTTP helpers ------------------------------------------------------------------------

    def url(self, service: str, path: str) -> str:
        return self.urls[service] + path

    def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        as_: str | None = None,
        ok: tuple[int, ...] = (200, 201),
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        response = self.http.request(method, self.url(service, path), headers=headers, **kwargs)
        if response.status_code not in ok:
            raise DemoError(f"{service}: {method} {path} → {describe_problem(response)}")
        return response

    def user_id(self, key: str) -> str:
        return str(self.state.accounts[key]["user_id"])

    # --- identity ----------------------------------------------------------------------------

    def sign_in(self, spec: DemoAccount) -> None:
        record = self.state.account(spec)
        token = sign_in_record(self.http, self.urls["identity"], record, self.state)
        if spec.role in SECOND_FACTOR_ROLES and not record.get("totp_secret"):
            self.enrol_totp(record, token)
            token = sign_in_record(self.http, self.urls["identity"], record, self.state)
        self.tokens[spec.key] = token
        me = self.call("GET", "identity", "/users/me", as_=spec.key).json()
        if me["role"] != spec.role:
            raise DemoError(f"{record['email']} exists with role {me['role']}, not {spec.role}")
        if record["user_id"] != me["user_id"]:
            record["user_id"] = me["user_id"]
            self.state.save()

    def enrol_totp(self, record: dict[str, Any], token: str) -> None:
        """TOTP for a privileged demo account (its password-only token may do just that); the
        secret and recovery codes go into the accounts file before the code confirms them."""
        auth = {"Authorization": f"Bearer {token}"}
        enrolled = self.http.post(
            self.url("identity", "/users/me/mfa/totp"),
            headers=auth,
            json={"current_password": record["password"]},
        )
        if enrolled.status_code != 201:
            raise DemoError(
                f"identity: enrolling TOTP for {record['email']} → {describe_problem(enrolled)}"
            )
        body = enrolled.json()
        record.update(
            totp_secret=body["secret"],
            totp_uri=body["otpauth_uri"],
            recovery_codes=body["recovery_codes"],
            totp_used_steps=[],
        )
        self.state.save()
        authenticator = Authenticator(body["secret"])
        confirmed = self.http.post(
            self.url("identity", "/users/me/mfa/totp/confirm"),
            headers=auth,
            json={"code": authenticator.code()},
        )
        record["totp_used_steps"] = sorted(authenticator.used)
        self.state.save()
        if confirmed.status_code != 204:
            raise DemoError(
                f"identity: confirming TOTP for {record['email']} → {describe_problem(confirmed)}"
            )
        self.say(f"enrolled TOTP for {record['email']} (secret kept in {self.state.path})")

    def ensure_account(self, spec: DemoAccount, create: Callable[[dict[str, Any]], int]) -> None:
        """Create the account unless it exists (409; 202 for self-registration, which answers
        alike either way), then sign in with the stored password."""
        record = self.state.account(spec)
        status = create(record)
        self.sign_in(spec)
        verb = {201: "created", 202: "registered or exists:"}.get(status, "exists:")
        self.say(f"{verb} {spec.role} {record['email']}")

    def seed_accounts(self) -> None:
        admin = BY_KEY["admin"]

        def create_admin(record: dict[str, Any]) -> int:
            try:
                base, secret = cli_credentials(self.state_dir, self.urls["identity"], None)
                client = service_client(base, secret)
            except AdminError as exc:
                raise DemoError(str(exc)) from exc
            try:
                response = client.post(
                    "/internal/admins",
                    json={
                        "email": record["email"],
                        "password": record["password"],
                        "name": admin.name,
                    },
                )
            finally:
                client.close()
            return self._created_or_exists(response, record)

        self.ensure_account(admin, create_admin)
        for spec in ACCOUNTS[1:]:

            def create(record: dict[str, Any], spec: DemoAccount = spec) -> int:
                body: dict[str, Any] = {
                    "email": record["email"],
                    "password": record["password"],
                    "name": spec.name,
                    "role": spec.role,
                }
                if spec.phone:
                    body["phone"] = spec.phone
                if spec.role in ("staff", "compliance"):
                    response = self.http.post(
                        self.url("identity", "/admin/users"),
                        json=body,
                        headers={"Authorization": f"Bearer {self.tokens['admin']}"},
                    )
                else:
                    if spec.business:
                        body["business"] = spec.business
                    response = self.http.post(self.url("identity", "/auth/register"), json=body)
                return self._created_or_exists(response, record)

            self.ensure_account(spec, create)

    @staticmethod
    def _created_or_exists(response: httpx.Response, record: dict[str, Any]) -> int:
        if response.status_code not in (201, 202, 409):
            raise DemoError(f"identity: creating {record['email']} → {describe_problem(response)}")
        return response.status_code

    def seed_identity_reads(self) -> None:
        """Staff reads a creator's account for support (audited with its purpose), and is
        refused another account without declaring a purpose (audited as a denial)."""
        mia, acme, staff = self.user_id("creator.mia"), self.user_id("client.acme"), "staff"
        self.state.once(
            f"identity.denied:{self.user_id(staff)}:{acme}",
            lambda: self.call("GET", "identity", f"/users/{acme}", as_=staff, ok=(403,)),
        )
        self.state.once(
            f"identity.read:{self.user_id(staff)}:{mia}",
            lambda: self.call(
                "GET", "identity", f"/users/{mia}", as_=staff, headers={"X-Purpose": "support"}
            ),
        )

    # --- consent -----------------------------------------------------------------------------

    def seed_consent(self) -> None:
        published = self.http.post(
            self.url("consent", "/policies"),
            json={
                "version": POLICY_VERSION,
                "effective_at": datetime.now(UTC).isoformat(),
                "title": POLICY_TITLE,
                "text": POLICY_TEXT,
            },
            headers={"Authorization": f"Bearer {self.tokens['admin']}"},
        )
        if published.status_code not in (201, 409):
            raise DemoError(
                f"consent: publishing policy {POLICY_VERSION} → {describe_problem(published)}"
            )
        self.say(
            f"{'published' if published.status_code == 201 else 'exists:'} policy {POLICY_VERSION}"
        )

        for key, decisions in CONSENTS.items():
            current = self.call("GET", "consent", "/consents/me", as_=key).json()
            decided = {item["purpose"] for item in current["items"]}
            for purpose, granted in decisions:
                if purpose in decided:
                    continue
                self.call(
                    "PUT",
                    "consent",
                    f"/consents/me/{purpose}",
                    as_=key,
                    json={"granted": granted, "policy_version": POLICY_VERSION},
                )
                self.say(f"{'granted' if granted else 'withdrew'} {purpose}: {BY_KEY[key].email}")

        zoe = self.user_id("creator.zoe")
        self.state.once(
            f"consent.tracking:{zoe}",
            lambda: self.call(
                "POST",
                "consent",
                "/tracking/events",
                as_="creator.zoe",
                ok=(202,),
                json={
                    "name": "page_view",
                    "page": "/creators/search",
                    "properties": {"q": "dance"},
                },
            ),
        )
        mia, staff = self.user_id("creator.mia"), self.user_id("staff")
        self.state.once(
            f"consent.read:{staff}:{mia}",
            lambda: self.call(
                "GET", "consent", f"/consents/{mia}", as_="staff", headers={"X-Purpose": "support"}
            ),
        )

    def wait_for_audit(self, timeout: float = AUDIT_WAIT_SECONDS) -> dict[str, Any] | None:
        """Wait until the audit log holds the staff reads and a signed head covers them (with
        the local witness's cosignature, when the witness runs)."""
        headers = {
            "Authorization": f"Bearer {self.tokens['compliance']}",
            "X-Purpose": "legal_compliance",
        }
        wanted = ["consent.ConsentRecordsRead", "identity.UserRead"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                last = -1
                for event_type in wanted:
                    page = self.http.get(
                        self.url("consent", "/audit/entries"),
                        params={"actor_id": self.user_id("staff"), "event_type": event_type},
                        headers=headers,
                    ).json()
                    if not page.get("items"):
                        raise LookupError(event_type)
                    last = max(last, *(item["seq"] for item in page["items"]))
                head = self.http.get(
                    self.url("consent", "/audit/checkpoints/latest"), headers=headers
                )
                if (
                    head.status_code == 200
                    and head.json()["tree_size"] > last
                    and (WITNESS not in self.urls or _cosigned(head.json()["note"]))
                ):
                    return dict(head.json())
            except (LookupError, httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        return None

    def pin_public_key(self) -> Path:
        """Keep the log's public key in the state folder, on first use (as a compliance
        officer would pin it); a changed key later is reported, never silently replaced."""
        path = self.state_dir / DEMO_DIR / PUBLIC_KEY_FILE
        served = self.call("GET", "consent", "/audit/public-key").text.strip()
        if not path.exists():
            path.write_text(served + "\n")
        elif path.read_text().strip() != served:
            err.print(
                f"[yellow]note:[/] the audit log's public key differs from the one pinned in "
                f"{escape(str(path))}; `mmgen audit verify` will refuse its heads"
            )
        return path

    def pin_witness_key(self) -> Path:
        """The local witness's public key, pinned on first use like the log's."""
        path = self.state_dir / DEMO_DIR / WITNESS_KEY_FILE
        served = self.call("GET", WITNESS, "/public-key").text.strip()
        if not path.exists():
            path.write_text(served + "\n")
        elif path.read_text().strip() != served:
            err.print(
                f"[yellow]note:[/] the witness's public key differs from the one pinned in "
                f"{escape(str(path))}; `mmgen audit verify --witness-key` will refuse its heads"
            )
        return path

    # --- the whole run -----------------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], Any]]]:
        """What this run seeds, in order, given the services that run."""
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("accounts", self.seed_accounts),
            ("identity reads", self.seed_identity_reads),
        ]
        if "consent" not in self.urls:
            return steps
        steps.append(("consents", self.seed_consent))
        for name, needs, step in SERVICE_STEPS:
            if all(service in self.urls for service in needs):
                steps.append((name, functools.partial(step, self)))
        steps.append(("audit log", self.wait_for_audit))
        return steps

    def run(self, progress: Callable[[str], None] | None = None) -> dict[str, Any] | None:
        """Every step; `progress(name)` after each. The signed head covering it all, if any."""
        head: dict[str, Any] | None = None
        for name, step in self.steps():
            try:
                result = step()
            except TimeoutError as exc:
                raise DemoError(str(exc)) from exc
            if name == "audit log":
                head = result
            if progress is not None:
                progress(name)
        return head


def seed(state_dir: Path, out: Console | None = None) -> None:
    """Seed the demo data into the stack recorded in `state_dir` and print how to use it."""
    out = out or console
    urls = running_services(state_dir)
    seeder = Seeder(state_dir, urls, say=lambda line: err.print(escape(line), highlight=False))
    bar = Progress(
        TextColumn("demo data"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err,
    )
    try:
        with bar:
            task = bar.add_task("", total=len(seeder.steps()))
            head = seeder.run(lambda name: bar.update(task, advance=1, description=name))
        key_path = seeder.pin_public_key() if "consent" in urls else None
        witness_path = seeder.pin_witness_key() if WITNESS in urls else None
    except httpx.HTTPError as exc:
        raise DemoError(f"a service stopped answering: {exc}") from exc
    finally:
        seeder.close()
    seeded = [name for name in urls if name in SEEDED_SERVICES]
    skipped = [name for name in urls if name not in (*SEEDED_SERVICES, *NOTHING_TO_SEED)]
    for line in accounts_lines(seeder.state, urls["identity"]):
        out.print(line, highlight=False, soft_wrap=True, markup=False)
    out.print(
        f"Passwords are kept in {seeder.state.path} (only you can read it). "
        f"Seeded: {', '.join(seeded)}"
        + (f"; nothing yet for {', '.join(skipped)}" if skipped else ""),
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    if "consent" not in urls:
        return
    state_option = "" if state_dir == Path(".mmgen") else f" --state-dir {state_dir}"
    if head is None:
        out.print(
            f"[yellow]The audit log had not recorded the demo within {AUDIT_WAIT_SECONDS:.0f} s; "
            "check the consent log, then run `mmgen demo` again.[/]"
        )
    else:
        out.print(f"Audit log: a signed tree head covers {head['tree_size']} entries.")
    witness_option = (
        f" --witness-key @{witness_path} --quorum 1" if witness_path is not None else ""
    )
    witnessed = " (the log's, and the local witness's: a head counts only if it cosigned it)"
    out.print(
        "Verify it as compliance staff, with the public keys pinned in the state folder"
        + (witnessed if witness_path else "")
        + ":\n"
        f"  export MMGEN_AUDIT_URL={urls['consent']}\n"
        f'  export MMGEN_AUDIT_TOKEN="$(uv run mmgen demo token compliance{state_option})"\n'
        f"  uv run mmgen audit verify --public-key @{key_path}{witness_option}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def _cosigned(note: str) -> bool:
    """The head carries a signature line besides the log's own (a witness's)."""
    return sum(1 for line in note.splitlines() if line.startswith("\u2014 ")) > 1


def accounts_lines(state: DemoState, identity_url: str) -> list[str]:
    """One line per account — role, email, password (and TOTP secret) — never wrapped, so each
    can be copied."""
    lines = [f"Demo accounts (sign in: POST {identity_url}/auth/token):"]
    width = max(len(spec.email) for spec in ACCOUNTS)
    for spec in ACCOUNTS:
        record = state.accounts.get(spec.key)
        if record:
            line = f"  {spec.role:<11} {record['email']:<{width}}  {record['password']}"
            if record.get("totp_secret"):
                line += f"  totp secret {record['totp_secret']}"
            lines.append(line)
    if any(r.get("totp_secret") for r in state.accounts.values()):
        lines.append(
            f"  (admin, staff and compliance sign in with a TOTP code too; secrets and recovery "
            f"codes are in {state.path}; `mmgen demo token ACCOUNT` does it for you)"
        )
    return lines


def sign_in_record(
    http: httpx.Client, identity_url: str, record: dict[str, Any], state: DemoState
) -> str:
    """An access token of a demo account: its password, and a TOTP code when it has a secret
    (steps used are remembered in the accounts file: identity takes each code once)."""
    body = {"email": record["email"], "password": record["password"]}
    authenticator = None
    if record.get("totp_secret"):
        authenticator = Authenticator(record["totp_secret"], record.get("totp_used_steps", []))
        body["totp"] = authenticator.code()
        record["totp_used_steps"] = sorted(authenticator.used)
        state.save()
    response = http.post(identity_url + "/auth/token", json=body)
    if response.status_code == 401:
        problem = response.json() if response.content else {}
        if problem.get("code") == "mfa_required":
            raise DemoError(
                f"{record['email']} has TOTP, but its secret is not in {state.path} "
                "(was that file replaced?). `mmgen reset --yes` starts afresh."
            )
        raise DemoError(
            f"{record['email']} exists, but not with the password (or TOTP secret) kept in "
            f"{state.path} (was that file removed?). `mmgen reset --yes` starts afresh."
        )
    if response.status_code != 200:
        raise DemoError(f"identity: signing in {record['email']} → {describe_problem(response)}")
    return str(response.json()["access_token"])


def access_token(state_dir: Path, account: str) -> str:
    """Sign a demo account in (by key, e.g. `compliance`, or email) and return its token."""
    urls = running_services(state_dir)
    state = DemoState.load(state_dir)
    record = state.accounts.get(account) or next(
        (r for r in state.accounts.values() if r["email"] == account), None
    )
    if record is None:
        known = ", ".join(state.accounts) or "none yet: run `mmgen demo`"
        raise DemoError(f"no demo account {account!r} (known: {known})")
    with httpx.Client(timeout=30.0) as http:
        return sign_in_record(http, urls["identity"], record, state)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]mmgen demo failed:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@demo_app.callback()
def demo(ctx: typer.Context, state_dir: StateDir = Path(".mmgen")) -> None:
    """Seed the demo data set into the running stack (idempotent: run it as often as you like)."""
    ctx.obj = state_dir
    if ctx.invoked_subcommand is not None:
        return
    try:
        seed(state_dir)
    except DemoError as exc:
        raise _fail(exc) from exc


@demo_app.command("token")
def token(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="demo account: admin, staff, compliance, …")],
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", envvar="MMGEN_STATE_DIR", help="local state of `mmgen up`"),
    ] = None,
) -> None:
    """Print an access token of a demo account (e.g. for MMGEN_AUDIT_TOKEN)."""
    try:
        typer.echo(access_token(state_dir or ctx.obj or Path(".mmgen"), account))
    except (DemoError, httpx.HTTPError) as exc:
        raise _fail(exc) from exc
