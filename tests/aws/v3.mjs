// The AWS SDK for JavaScript v3 (@aws-sdk/client-rekognition, unchanged) against facegate's
// Rekognition-compatible API, driven by crates/facegate-server/tests/rekognition.rs (the same
// environment as boto3_test.py). Prints "v3: ok" at the end; any failure throws.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  RekognitionClient,
  CreateCollectionCommand,
  DeleteCollectionCommand,
  ListCollectionsCommand,
  DescribeCollectionCommand,
  IndexFacesCommand,
  ListFacesCommand,
  DeleteFacesCommand,
  SearchFacesCommand,
  SearchFacesByImageCommand,
  CompareFacesCommand,
  DetectFacesCommand,
  CreateFaceLivenessSessionCommand,
  GetFaceLivenessSessionResultsCommand,
  ResourceNotFoundException,
  ResourceAlreadyExistsException,
  InvalidImageFormatException,
  InvalidParameterException,
  AccessDeniedException,
  SessionNotFoundException,
} from "@aws-sdk/client-rekognition";

const E = process.env;
const COLLECTION = "v3-staff";
const photo = (rel) => readFileSync(join(E.FG_PHOTOS, rel));

function client({ key = E.FG_KEY, secret = E.FG_SECRET, systemClockOffset = 0 } = {}) {
  const c = new RekognitionClient({
    endpoint: E.FG_ENDPOINT,
    region: "eu-west-1",
    credentials: { accessKeyId: key, secretAccessKey: secret },
    // One attempt: a refused signature must reach the test, not be corrected and retried.
    maxAttempts: 1,
  });
  c.config.systemClockOffset = systemClockOffset;
  return c;
}

const rek = client();
const send = (cmd, c = rek) => c.send(cmd);

async function rejects(promise, name, Class) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.name, name, `${name} expected, got ${e.name}: ${e.message}`);
    if (Class) assert.ok(e instanceof Class, `${name} is the SDK's exception class`);
    return e;
  }
  assert.fail(`${name} expected, the call succeeded`);
}

const inUnit = (b) => ["Width", "Height", "Left", "Top"].every((k) => b[k] >= 0 && b[k] <= 1) && b.Width > 0;

// Collections.
const created = await send(new CreateCollectionCommand({ CollectionId: COLLECTION }));
assert.equal(created.StatusCode, 200);
assert.ok(created.CollectionArn.endsWith(`:collection/${COLLECTION}`));
await rejects(send(new CreateCollectionCommand({ CollectionId: COLLECTION })), "ResourceAlreadyExistsException", ResourceAlreadyExistsException);
assert.ok((await send(new ListCollectionsCommand({}))).CollectionIds.includes(COLLECTION));
assert.equal((await send(new DescribeCollectionCommand({ CollectionId: COLLECTION }))).FaceCount, 0);

// Index.
const ids = {};
for (const [name, file] of [
  ["alice", "deepface/person_img1/img1.jpg"],
  ["bob", "deepface/person_img3/img3.jpg"],
  ["bob", "deepface/person_img3/img53.jpg"],
]) {
  const r = await send(new IndexFacesCommand({ CollectionId: COLLECTION, Image: { Bytes: photo(file) }, ExternalImageId: name, MaxFaces: 1 }));
  assert.equal(r.FaceRecords.length, 1, JSON.stringify(r));
  assert.equal(r.FaceRecords[0].Face.ExternalImageId, name);
  assert.ok(inUnit(r.FaceRecords[0].Face.BoundingBox));
  (ids[name] ??= []).push(r.FaceRecords[0].Face.FaceId);
}
const pair = readFileSync(E.FG_PAIR);
const indexedPair = await send(new IndexFacesCommand({ CollectionId: COLLECTION, Image: { Bytes: pair }, ExternalImageId: "alice", MaxFaces: 1 }));
assert.deepEqual(indexedPair.UnindexedFaces.map((u) => u.Reasons), [["EXCEEDS_MAX_FACES"]]);
const listed = await send(new ListFacesCommand({ CollectionId: COLLECTION }));
assert.equal(listed.Faces.length, 4);
assert.ok(listed.Faces.every((f) => inUnit(f.BoundingBox)));

// Search: the seed application's call, a stranger, a face by id.
let r = await send(new SearchFacesByImageCommand({ CollectionId: COLLECTION, Image: { Bytes: photo("deepface/person_img1/img4.jpg") }, FaceMatchThreshold: 90, MaxFaces: 1 }));
assert.equal(r.FaceMatches.length, 1);
assert.equal(r.FaceMatches[0].Face.ExternalImageId, "alice");
assert.ok(r.FaceMatches[0].Similarity >= 90);
const strangerDir = "deepface/person_img16";
const stranger = join(strangerDir, readdirSync(join(E.FG_PHOTOS, strangerDir)).filter((f) => f.endsWith(".jpg")).sort()[0]);
r = await send(new SearchFacesByImageCommand({ CollectionId: COLLECTION, Image: { Bytes: photo(stranger) }, FaceMatchThreshold: 90, MaxFaces: 5 }));
assert.deepEqual(r.FaceMatches, []);
r = await send(new SearchFacesCommand({ CollectionId: COLLECTION, FaceId: ids.bob[0], FaceMatchThreshold: 90 }));
assert.deepEqual(r.FaceMatches.map((m) => m.Face.FaceId), [ids.bob[1]]);

// Compare and detect.
r = await send(new CompareFacesCommand({ SourceImage: { Bytes: photo("deepface/person_img1/img4.jpg") }, TargetImage: { Bytes: pair }, SimilarityThreshold: 90 }));
assert.equal(r.FaceMatches.length, 1);
assert.equal(r.UnmatchedFaces.length, 1);
assert.ok(r.FaceMatches[0].Similarity >= 90 && r.FaceMatches[0].Similarity <= 100);
r = await send(new DetectFacesCommand({ Image: { Bytes: pair }, Attributes: ["ALL"] }));
assert.equal(r.FaceDetails.length, 2);
assert.equal(typeof r.FaceDetails[0].EyesOpen.Value, "boolean");

// Delete.
r = await send(new DeleteFacesCommand({ CollectionId: COLLECTION, FaceIds: [ids.alice[0], "nope"] }));
assert.deepEqual(r.DeletedFaces, [ids.alice[0]]);
assert.deepEqual(r.UnsuccessfulFaceDeletions, [{ FaceId: "nope", Reasons: ["FACE_NOT_FOUND"] }]);

// Errors the SDK knows by name.
await rejects(send(new SearchFacesByImageCommand({ CollectionId: "no-such-collection", Image: { Bytes: photo("deepface/person_img1/img4.jpg") } })), "ResourceNotFoundException", ResourceNotFoundException);
await rejects(send(new DetectFacesCommand({ Image: { Bytes: readFileSync(E.FG_NOTIMAGE) } })), "InvalidImageFormatException", InvalidImageFormatException);
await rejects(send(new SearchFacesByImageCommand({ CollectionId: COLLECTION, Image: { Bytes: readFileSync(E.FG_NOFACE) } })), "InvalidParameterException", InvalidParameterException);
await rejects(send(new DetectFacesCommand({ Image: { S3Object: { Bucket: "photos", Name: "n.jpg" } } })), "InvalidParameterException", InvalidParameterException);
const wrong = E.FG_SECRET.slice(0, -1) + (E.FG_SECRET.endsWith("A") ? "B" : "A");
await rejects(send(new ListCollectionsCommand({}), client({ secret: wrong })), "InvalidSignatureException");
await rejects(send(new ListCollectionsCommand({}), client({ key: "FGAKNOSUCHKEY0000000" })), "UnrecognizedClientException");
const old = await rejects(send(new ListCollectionsCommand({}), client({ systemClockOffset: -20 * 60 * 1000 })), "InvalidSignatureException");
assert.match(old.message, /Signature expired/);
const reader = client({ key: E.FG_READ_KEY, secret: E.FG_READ_SECRET });
await send(new ListCollectionsCommand({}), reader);
await rejects(send(new CreateCollectionCommand({ CollectionId: "reader-made" }), reader), "AccessDeniedException", AccessDeniedException);

// Liveness.
const session = await send(new CreateFaceLivenessSessionCommand({ ClientRequestToken: "v3-order-1" }));
assert.ok(session.SessionId);
assert.equal((await send(new GetFaceLivenessSessionResultsCommand({ SessionId: session.SessionId }))).Status, "CREATED");
const passed = await send(new GetFaceLivenessSessionResultsCommand({ SessionId: E.FG_LIVE_SESSION }));
assert.equal(passed.Status, "SUCCEEDED");
assert.ok(passed.Confidence >= 50);
assert.ok(passed.ReferenceImage.Bytes instanceof Uint8Array && passed.ReferenceImage.Bytes.length > 1000);
await rejects(send(new GetFaceLivenessSessionResultsCommand({ SessionId: "00000000-0000-0000-0000-000000000000" })), "SessionNotFoundException", SessionNotFoundException);

await send(new DeleteCollectionCommand({ CollectionId: COLLECTION }));
await rejects(send(new DescribeCollectionCommand({ CollectionId: COLLECTION })), "ResourceNotFoundException", ResourceNotFoundException);
console.log("v3: ok");
