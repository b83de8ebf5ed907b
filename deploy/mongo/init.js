// MongoDB replica-set and user initialisation for ECC (issue 7). Idempotent: run it as often as
// you like (docker compose runs it on every `up`, Kubernetes in the mongo-init-<hash> Job).
//
//   mongosh --nodb --quiet deploy/mongo/init.js
//
// Environment:
//   ECC_MONGO_HOSTS      host:port,host:port,...  the members; the first one initiates the set
//   ECC_REPLICA_SET      replica set name (rs0)
//   ECC_DATABASES        ecc_intake,ecc_triage,...  one database per service (style.md)
//   MONGO_ROOT_USERNAME / MONGO_ROOT_PASSWORD   created by the mongo image on first start
//   ECC_APP_USERNAME / ECC_APP_PASSWORD         the services' user: readWrite on ECC_DATABASES only
// Each of the last four may instead be given as <NAME>_FILE, a file holding the value
// (Kubernetes mounts the ecc-mongo Secret as files).
//
// What it does: waits for the first member, runs replSetInitiate if the set has no config yet,
// waits for a primary, creates (or updates) the application user, and creates the audit index
// {case_no: 1, at: -1} in every service database (ADR 0006: an insert-only audit user cannot).

function env(name) {
  const file = process.env[`${name}_FILE`];
  const value = file ? require("fs").readFileSync(file, "utf8").trim() : process.env[name];
  if (!value) { throw new Error(`${name} (or ${name}_FILE) is not set`); }
  return value;
}

const hosts = env("ECC_MONGO_HOSTS").split(",").map((h) => h.trim()).filter((h) => h);
const setName = env("ECC_REPLICA_SET");
const databases = env("ECC_DATABASES").split(",").map((d) => d.trim()).filter((d) => d);
const rootUser = encodeURIComponent(env("MONGO_ROOT_USERNAME"));
const rootPassword = encodeURIComponent(env("MONGO_ROOT_PASSWORD"));
const appUser = env("ECC_APP_USERNAME");
const appPassword = env("ECC_APP_PASSWORD");

function connect(query, seeds) {
  return new Mongo(`mongodb://${rootUser}:${rootPassword}@${seeds}/?authSource=admin&${query}`);
}

function retry(what, attempt, seconds) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      return attempt();
    } catch (error) {
      if (Date.now() > deadline) { throw new Error(`${what}: gave up: ${error}`); }
      print(`${what}: ${error.message || error}; retrying`);
      sleep(2000);
    }
  }
}

// 1. The first member answers (it may still be running the image's first-start initialisation).
const first = retry(`connect ${hosts[0]}`, () => {
  const conn = connect("directConnection=true", hosts[0]);
  conn.getDB("admin").runCommand({ ping: 1 });
  return conn;
}, 600);

// 2. Initiate the set once.
function notYetInitialized(reply) {
  return reply.code === 94 || reply.codeName === "NotYetInitialized";
}
let initiated = true;
try {
  const reply = first.getDB("admin").runCommand({ replSetGetStatus: 1 });
  if (reply.ok !== 1) {
    if (!notYetInitialized(reply)) { throw new Error(`replSetGetStatus: ${JSON.stringify(reply)}`); }
    initiated = false;
  }
} catch (error) {
  if (!notYetInitialized(error)) { throw error; }
  initiated = false;
}
if (!initiated) {
  const members = hosts.map((host, id) => ({ _id: id, host: host, priority: id === 0 ? 2 : 1 }));
  print(`initiating replica set ${setName} with ${hosts.join(", ")}`);
  first.getDB("admin").runCommand({ replSetInitiate: { _id: setName, members: members } });
} else {
  print(`replica set ${setName} already initiated`);
}

// 3. A primary exists.
const client = retry("wait for a primary", () => {
  const conn = connect(`replicaSet=${setName}`, hosts.join(","));
  const hello = conn.getDB("admin").runCommand({ hello: 1 });
  if (!hello.primary) { throw new Error("no primary yet"); }
  return conn;
}, 600);

// 4. The application user: readWrite on each service database, nothing else.
const admin = client.getDB("admin");
const roles = databases.map((db) => ({ role: "readWrite", db: db }));
if (admin.getUser(appUser)) {
  admin.updateUser(appUser, { pwd: appPassword, roles: roles });
  print(`updated user ${appUser}: readWrite on ${databases.join(", ")}`);
} else {
  admin.createUser({ user: appUser, pwd: appPassword, roles: roles });
  print(`created user ${appUser}: readWrite on ${databases.join(", ")}`);
}

// 5. The audit trail's index in every service database.
for (const name of databases) {
  client.getDB(name).getCollection("audit").createIndex({ case_no: 1, at: -1 }, { name: "case_no_1_at_-1" });
}
print("mongo init done");
