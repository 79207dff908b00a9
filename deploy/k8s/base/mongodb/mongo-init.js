// Prepares the MongoDB replica set for the services, idempotently: initiates the set once,
// waits for a primary, then gives every service a user of its own with readWrite on its own
// database only (no service reads another's database). Used by deploy/k8s and deploy/compose
// alike (compose mounts it from here: kustomize reads nothing outside deploy/k8s). Run:
// `mongosh --nodb --file mongo-init.js`.
//
//   MONGO_REPLICA_SET       the set's name (rs0)
//   MONGO_MEMBERS           host:port of every member, comma separated; the first is asked
//   MONGO_ROOT_USERNAME     the administrator the image created on the first member
//   MONGO_ROOT_PASSWORD_FILE
//   MONGO_SERVICES          the services, space separated
//   SECRETS_DIR             holds mongo_<service>_password for every service (default /run/secrets)
const fs = require("fs");

function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    if (fallback === undefined) throw new Error(`set ${name}`);
    return fallback;
  }
  return value;
}
function secret(path) {
  return fs.readFileSync(path, "utf8").replace(/\r?\n$/, "");
}

const replicaSet = env("MONGO_REPLICA_SET");
const members = env("MONGO_MEMBERS").split(",").map((m) => m.trim()).filter(Boolean);
const rootUser = env("MONGO_ROOT_USERNAME");
const rootPassword = secret(env("MONGO_ROOT_PASSWORD_FILE"));
const services = env("MONGO_SERVICES").split(/\s+/).filter(Boolean);
const secretsDir = env("SECRETS_DIR", "/run/secrets");

function connectWithRetry(uri) {
  for (let attempt = 1; ; attempt++) {
    try {
      const conn = new Mongo(uri);
      conn.getDB("admin").auth(rootUser, rootPassword);
      conn.getDB("admin").runCommand({ ping: 1 });
      return conn;
    } catch (error) {
      if (attempt >= 90) throw error;
      print(`waiting for ${uri}: ${error.message}`);
      sleep(2000);
    }
  }
}

const first = connectWithRetry(`mongodb://${members[0]}/admin?directConnection=true`);
const admin = first.getDB("admin");
const status = admin.runCommand({ replSetGetStatus: 1 });
if (status.ok !== 1) {
  if (status.codeName !== "NotYetInitialized") throw new Error(`replSetGetStatus: ${status.errmsg}`);
  const config = {
    _id: replicaSet,
    members: members.map((host, index) => ({ _id: index, host, priority: index === 0 ? 2 : 1 })),
  };
  const initiated = admin.runCommand({ replSetInitiate: config });
  if (initiated.ok !== 1) throw new Error(`replSetInitiate: ${initiated.errmsg}`);
  print(`initiated replica set ${replicaSet} with ${members.length} member(s)`);
}

for (let attempt = 1; !admin.runCommand({ hello: 1 }).isWritablePrimary; attempt++) {
  if (attempt >= 90) throw new Error("no writable primary after 3 minutes");
  sleep(2000);
}

for (const service of services) {
  const password = secret(`${secretsDir}/mongo_${service}_password`);
  const roles = [{ role: "readWrite", db: service }];
  if (admin.getUser(service) === null) {
    admin.createUser({ user: service, pwd: password, roles });
    print(`created user ${service}`);
  } else {
    admin.updateUser(service, { pwd: password, roles });
    print(`updated user ${service}`);
  }
}
print("mongodb: replica set and users are in place");
