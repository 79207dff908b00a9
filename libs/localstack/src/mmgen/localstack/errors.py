"""Errors of the local stack; each names the component, its port and its log."""

from __future__ import annotations

from pathlib import Path


class LocalStackError(Exception):
    """Root of every error this package raises."""


class PortInUseError(LocalStackError):
    def __init__(self, component: str, host: str, port: int) -> None:
        self.component, self.host, self.port = component, host, port
        super().__init__(
            f"{component}: port {port} on {host} is already in use "
            f"(another process answers there; stop it or choose another port)"
        )


class ComponentFailedError(LocalStackError):
    """A component exited or never became ready; carries the last lines of its log."""

    reason = "failed"

    def __init__(
        self, component: str, port: int, log_path: Path, log_tail: str, extra: str = ""
    ) -> None:
        self.component, self.port, self.log_path, self.log_tail = (
            component,
            port,
            log_path,
            log_tail,
        )
        message = f"{component} (port {port}) {self.reason}{extra}. Log: {log_path}"
        if log_tail:
            indented = "\n".join(f"    {line}" for line in log_tail.splitlines())
            message += f"\n  last lines of its log:\n{indented}"
        super().__init__(message)


class ComponentExitedError(ComponentFailedError):
    reason = "exited before it became ready"


class ComponentNotReadyError(ComponentFailedError):
    reason = "did not become ready"

    def __init__(
        self, component: str, port: int, log_path: Path, log_tail: str, timeout: float
    ) -> None:
        super().__init__(component, port, log_path, log_tail, extra=f" within {timeout:.0f} s")
