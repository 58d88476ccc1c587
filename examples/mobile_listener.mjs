// Follow one job the way a mobile app does, with the real Firebase JS SDK (npm `firebase`,
// installed by `make web`): sign in, then snapshot listeners on jobs/{jobId} and on its
// sketches (jobs/{jobId}/sketches/{i}: each sketch's progress while the job runs; the final
// job document carries every sketch's final state).
//
//   node examples/mobile_listener.mjs JOB_ID --topology generated_outputs/dev/topology.json \
//       --email alice@example.com --password a-long-test-password [--try-write]
//
// Against `make dev` it reads where the Auth and Firestore emulators are from topology.json
// (what an app's debug build would be configured with). Prints one JSON line per snapshot
// ({"status", "sketches"}), and exits 0 when the job is final. A listener the rules refuse
// (another user's job, a missing or expired one) gets `permission-denied`, not an empty
// snapshot: printed as {"error": "permission-denied"}, exit 3. With --try-write it first
// tries to cancel the job by writing the document, which the rules refuse
// ({"write": "permission-denied"}): jobs change only through the API.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

// One node_modules for the project: the SDK comes from web/ (make web).
const require = createRequire(new URL("../web/package.json", import.meta.url));
const { initializeApp } = require("firebase/app");
const { connectAuthEmulator, getAuth, signInWithEmailAndPassword } = require("firebase/auth");
const {
  collection, connectFirestoreEmulator, doc, getFirestore, onSnapshot, updateDoc,
} = require("firebase/firestore");

const FINAL = new Set(["done", "partial", "failed", "cancelled"]);

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    topology: { type: "string", default: "generated_outputs/dev/topology.json" },
    email: { type: "string" },
    password: { type: "string" },
    "try-write": { type: "boolean", default: false },
    "timeout-s": { type: "string", default: "60" },
  },
});
const [jobId] = positionals;
if (!jobId || !values.email || !values.password) {
  console.error("usage: mobile_listener.mjs JOB_ID --email E --password P [--topology FILE]");
  process.exit(2);
}

const topology = JSON.parse(readFileSync(values.topology, "utf8"));
const app = initializeApp({ apiKey: "emulator", projectId: topology.project_id });
const auth = getAuth(app);
connectAuthEmulator(auth, `http://${topology.auth_emulator_host}`, { disableWarnings: true });
const db = getFirestore(app);
const [host, port] = topology.firestore_emulator_host.split(":");
connectFirestoreEmulator(db, host, Number(port));

const say = (line) => console.log(JSON.stringify(line));
const finish = (code) => setTimeout(() => process.exit(code), 0);

await signInWithEmailAndPassword(auth, values.email, values.password);
const job = doc(db, "jobs", jobId);

if (values["try-write"]) {
  try {
    await updateDoc(job, { status: "cancelled" });
    say({ write: "accepted" });
  } catch (error) {
    say({ write: error.code });
  }
}

const timer = setTimeout(() => { say({ error: "timeout" }); finish(1); },
  Number(values["timeout-s"]) * 1000);

let jobData = null;
let sketchDocs = {};
let ended = false;

// The job as the API shows it: a final job document is complete; before that each sketch's
// own document is newer than the job's copy, and the job is running once a sketch started.
const changed = () => {
  if (!jobData || ended) return;
  const final = FINAL.has(jobData.status);
  const states = final ? (jobData.sketches || {}) : { ...(jobData.sketches || {}), ...sketchDocs };
  const sketches = Object.fromEntries(
    Object.entries(states).map(([index, s]) => [index, s.status]),
  );
  const started = Object.values(sketches).some((s) => s !== "pending");
  const status = final ? jobData.status : (started ? "running" : "queued");
  say({ status, sketches });
  if (final) { ended = true; clearTimeout(timer); finish(0); }
};

// The error path a mobile listener must handle: the rules refused it.
const refused = (error) => {
  if (ended) return;
  ended = true;
  say({ error: error.code });
  clearTimeout(timer);
  finish(3);
};

onSnapshot(
  job,
  (snapshot) => {
    if (!snapshot.exists()) {
      // Only the owner may read, so a missing document is refused, not empty; kept for clarity.
      say({ error: "not-found" });
      finish(1);
      return;
    }
    jobData = snapshot.data();
    changed();
  },
  refused,
);
onSnapshot(
  collection(db, "jobs", jobId, "sketches"),
  (snapshot) => {
    sketchDocs = Object.fromEntries(snapshot.docs.map((d) => [d.id, d.data()]));
    changed();
  },
  refused,
);
