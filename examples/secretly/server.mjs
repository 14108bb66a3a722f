// Secretly: private notes opened by your face. No account and no password: the first time a face is
// shown a user is created for it; a returning face finds its notes. Written the way the original
// was written against Amazon Rekognition, with the AWS SDK for JavaScript v2 (`aws-sdk`) — here
// pointed at facegate's Rekognition-compatible API (`SECRETLY_REKOGNITION_ENDPOINT`) and signed with
// an access key from `facegate faces aws-key add` (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
// The face calls are the seed application's: createCollection, searchFacesByImage with
// FaceMatchThreshold 90 and MaxFaces 1, indexFaces with the user's id as ExternalImageId.
//
//   SECRETLY_LISTEN (127.0.0.1:8083), SECRETLY_DATA (./secretly-notes.json),
//   SECRETLY_COLLECTION (secretly-users), AWS_REGION (us-east-1)
//
// What this design cannot do (docs/rekognition.md): a photo of someone opens their notes. For
// sign-in that resists photos use facegate's face login with its liveness check (examples/notes).
import http from "node:http";
import { randomUUID, randomBytes, createHash } from "node:crypto";
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import AWS from "aws-sdk";

const endpoint = process.env.SECRETLY_REKOGNITION_ENDPOINT ?? "http://localhost:8080/aws/rekognition";
const [host, port] = (process.env.SECRETLY_LISTEN ?? "127.0.0.1:8083").split(":");
const dataFile = process.env.SECRETLY_DATA ?? "./secretly-notes.json";
const CollectionId = process.env.SECRETLY_COLLECTION ?? "secretly-users";

const rekognition = new AWS.Rekognition({ endpoint, region: process.env.AWS_REGION ?? "us-east-1" });

// ---------------------------------------------------------------- faces (the seed's calls)

async function ensureCollection() {
  try {
    await rekognition.createCollection({ CollectionId }).promise();
  } catch (err) {
    if (err.code !== "ResourceAlreadyExistsException") throw err;
  }
}

// Who is this? The user whose face matches at 90, or a new user made from this face.
async function identify(imageBytes) {
  const found = await rekognition
    .searchFacesByImage({ CollectionId, Image: { Bytes: imageBytes }, FaceMatchThreshold: 90, MaxFaces: 1 })
    .promise();
  if (found.FaceMatches.length > 0) {
    return { userId: found.FaceMatches[0].Face.ExternalImageId, created: false };
  }
  const userId = randomUUID();
  const indexed = await rekognition
    .indexFaces({ CollectionId, Image: { Bytes: imageBytes }, ExternalImageId: userId, MaxFaces: 1, QualityFilter: "AUTO" })
    .promise();
  if (indexed.FaceRecords.length === 0) {
    const reasons = indexed.UnindexedFaces.flatMap((u) => u.Reasons).join(", ");
    throw Object.assign(new Error(`the face is not clear enough to remember (${reasons || "no face"})`), { code: "InvalidParameterException" });
  }
  return { userId, created: true };
}

// ---------------------------------------------------------------- notes and sessions

let db = { notes: {} };
try {
  db = JSON.parse(readFileSync(dataFile, "utf8"));
} catch {}
function save() {
  writeFileSync(dataFile + ".tmp", JSON.stringify(db));
  renameSync(dataFile + ".tmp", dataFile);
}
// Session id (only its hash kept) -> user id; in memory: a restart signs everyone out.
const sessions = new Map();
const hash = (s) => createHash("sha256").update(s).digest("hex");

function sessionUser(req) {
  const m = /(?:^|;\s*)secretly=([A-Za-z0-9_-]+)/.exec(req.headers.cookie ?? "");
  return m ? sessions.get(hash(m[1])) : undefined;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(user) {
  const body = user
    ? `<p>Your notes (user ${esc(user.slice(0, 8))}…):</p>
<ul>${(db.notes[user] ?? []).map((n) => `<li>${esc(n)}</li>`).join("") || "<li><em>none yet</em></li>"}</ul>
<form method="post" action="/notes"><input name="note" maxlength="500" required autofocus> <button>Add note</button></form>
<form method="post" action="/logout"><button>Done</button></form>`
    : `<p>Show your face to open your notes. The first time, your face becomes your key.</p>
<video id="cam" autoplay playsinline width="320" height="240"></video><br>
<button id="snap">Open my notes</button> or <input type="file" id="file" accept="image/*">
<p id="msg"></p>
<script>
const msg = document.getElementById("msg");
navigator.mediaDevices?.getUserMedia({ video: true }).then((s) => (document.getElementById("cam").srcObject = s)).catch(() => {});
async function send(blob) {
  const b64 = await new Promise((ok) => { const r = new FileReader(); r.onload = () => ok(r.result.split(",")[1]); r.readAsDataURL(blob); });
  const r = await fetch("/face", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ image: b64 }) });
  const v = await r.json();
  if (r.ok) location.reload(); else msg.textContent = v.error;
}
document.getElementById("snap").onclick = () => {
  const v = document.getElementById("cam"), c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight; c.getContext("2d").drawImage(v, 0, 0);
  c.toBlob(send, "image/jpeg", 0.9);
};
document.getElementById("file").onchange = (e) => e.target.files[0] && send(e.target.files[0]);
</script>`;
  return `<!doctype html><meta charset="utf-8"><title>Secretly</title>
<style>body{font:16px system-ui;max-width:40em;margin:2em auto}video{background:#222}</style>
<h1>Secretly</h1>${body}`;
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > limit) {
        reject(Object.assign(new Error("too large"), { status: 413 }));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob: mediastream:; img-src 'self' data: blob:",
    ...headers,
  });
  res.end(body);
}
const json = (res, status, v, headers) => send(res, status, "application/json", JSON.stringify(v), headers);

const server = http.createServer(async (req, res) => {
  try {
    // Posts from other sites are refused (the session cookie is SameSite=Strict as well).
    if (req.method === "POST" && req.headers.origin && req.headers.origin !== `http://${req.headers.host}`) {
      return json(res, 403, { error: "cross-site request" });
    }
    const user = sessionUser(req);
    if (req.method === "GET" && req.url === "/") return send(res, 200, "text/html; charset=utf-8", page(user));
    if (req.method === "POST" && req.url === "/face") {
      const { image } = JSON.parse((await readBody(req, 8 * 1024 * 1024)).toString() || "{}");
      if (typeof image !== "string") return json(res, 400, { error: "send {\"image\": <base64 JPEG or PNG>}" });
      const { userId, created } = await identify(Buffer.from(image, "base64"));
      const sid = randomBytes(32).toString("base64url");
      sessions.set(hash(sid), userId);
      return json(res, 200, { created }, { "set-cookie": `secretly=${sid}; HttpOnly; SameSite=Strict; Path=/` });
    }
    if (req.method === "POST" && req.url === "/notes") {
      if (!user) return json(res, 401, { error: "show your face first" });
      const note = new URLSearchParams((await readBody(req, 16 * 1024)).toString()).get("note")?.trim();
      if (note) {
        (db.notes[user] ??= []).push(note.slice(0, 500));
        save();
      }
      return send(res, 303, "text/plain", "", { location: "/" });
    }
    if (req.method === "POST" && req.url === "/logout") {
      const m = /(?:^|;\s*)secretly=([A-Za-z0-9_-]+)/.exec(req.headers.cookie ?? "");
      if (m) sessions.delete(hash(m[1]));
      return send(res, 303, "text/plain", "", { location: "/", "set-cookie": "secretly=; Max-Age=0; Path=/" });
    }
    return json(res, 404, { error: "not found" });
  } catch (err) {
    // Rekognition's errors by their codes: no face, not an image, too large.
    const known = {
      InvalidParameterException: "no face was found that can be used: look at the camera",
      InvalidImageFormatException: "that is not a photo",
      ImageTooLargeException: "the photo is too large",
    };
    if (err.status === 413) return json(res, 413, { error: "the photo is too large" });
    if (known[err.code]) return json(res, 400, { error: known[err.code] });
    console.error("secretly:", err.code ?? "", err.message);
    return json(res, 502, { error: "the face service did not answer" });
  }
});

await ensureCollection();
server.listen(Number(port), host, () => console.log(`secretly: http://${host}:${port}/ (faces: ${endpoint})`));
