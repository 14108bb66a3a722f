// The AWS SDK for JavaScript v2 (aws-sdk, unchanged) against facegate's Rekognition-compatible
// API, the way the seed face-login application calls it (createCollection, indexFaces with
// ExternalImageId, searchFacesByImage with FaceMatchThreshold 90 and MaxFaces 1, reading
// FaceMatches[0].Face.ExternalImageId), plus compareFaces, the liveness results and the errors.
// Driven by crates/facegate-server/tests/rekognition.rs; prints "v2: ok" at the end.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import AWS from "aws-sdk";

const E = process.env;
const COLLECTION = "v2-users";
const photo = (rel) => readFileSync(join(E.FG_PHOTOS, rel));

function client({ key = E.FG_KEY, secret = E.FG_SECRET, systemClockOffset = 0 } = {}) {
  return new AWS.Rekognition({
    endpoint: E.FG_ENDPOINT,
    region: "us-east-1",
    accessKeyId: key,
    secretAccessKey: secret,
    maxRetries: 0,
    systemClockOffset,
  });
}
const rekognition = client();

async function rejects(promise, code) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.code, code, `${code} expected, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`${code} expected, the call succeeded`);
}

// The seed's flow: the first face creates a user, a returning face finds them.
await rekognition.createCollection({ CollectionId: COLLECTION }).promise();
async function findUser(image) {
  const r = await rekognition
    .searchFacesByImage({ CollectionId: COLLECTION, Image: { Bytes: image }, FaceMatchThreshold: 90, MaxFaces: 1 })
    .promise();
  return r.FaceMatches.length > 0 ? r.FaceMatches[0].Face.ExternalImageId : null;
}
assert.equal(await findUser(photo("deepface/person_img1/img1.jpg")), null, "an empty collection knows nobody");
await rekognition
  .indexFaces({ CollectionId: COLLECTION, Image: { Bytes: photo("deepface/person_img1/img1.jpg") }, ExternalImageId: "user-1" })
  .promise();
assert.equal(await findUser(photo("deepface/person_img1/img4.jpg")), "user-1", "a returning face");
assert.equal(await findUser(photo("deepface/person_img3/img54.jpg")), null, "someone else is a new user");
await rekognition
  .indexFaces({ CollectionId: COLLECTION, Image: { Bytes: photo("deepface/person_img3/img3.jpg") }, ExternalImageId: "user-2" })
  .promise();
assert.equal(await findUser(photo("deepface/person_img3/img54.jpg")), "user-2");

// The serverless comparison API's call.
const cmp = await rekognition
  .compareFaces({ SourceImage: { Bytes: photo("deepface/person_img1/img4.jpg") }, TargetImage: { Bytes: photo("deepface/person_img1/img2.jpg") }, SimilarityThreshold: 90 })
  .promise();
assert.equal(cmp.FaceMatches.length, 1);
assert.ok(cmp.FaceMatches[0].Similarity >= 90);
const diff = await rekognition
  .compareFaces({ SourceImage: { Bytes: photo("deepface/person_img1/img4.jpg") }, TargetImage: { Bytes: photo("deepface/person_img3/img3.jpg") } })
  .promise();
assert.equal(diff.FaceMatches.length, 0);
assert.equal(diff.UnmatchedFaces.length, 1);
const faces = await rekognition.listFaces({ CollectionId: COLLECTION }).promise();
assert.deepEqual(faces.Faces.map((f) => f.ExternalImageId).sort(), ["user-1", "user-2"]);
const detected = await rekognition.detectFaces({ Image: { Bytes: photo("deepface/person_img1/img4.jpg") }, Attributes: ["ALL"] }).promise();
assert.equal(detected.FaceDetails.length, 1);
const passed = await rekognition.getFaceLivenessSessionResults({ SessionId: E.FG_LIVE_SESSION }).promise();
assert.equal(passed.Status, "SUCCEEDED");
assert.ok(Buffer.isBuffer(passed.ReferenceImage.Bytes) && passed.ReferenceImage.Bytes.length > 1000);

// Errors, by the codes v2 gives them.
await rejects(rekognition.describeCollection({ CollectionId: "no-such-collection" }).promise(), "ResourceNotFoundException");
await rejects(rekognition.detectFaces({ Image: { Bytes: readFileSync(E.FG_NOTIMAGE) } }).promise(), "InvalidImageFormatException");
await rejects(rekognition.createCollection({ CollectionId: COLLECTION }).promise(), "ResourceAlreadyExistsException");
const wrong = E.FG_SECRET.slice(0, -1) + (E.FG_SECRET.endsWith("A") ? "B" : "A");
await rejects(client({ secret: wrong }).listCollections({}).promise(), "InvalidSignatureException");
const old = await rejects(client({ systemClockOffset: -20 * 60 * 1000 }).listCollections({}).promise(), "InvalidSignatureException");
assert.match(old.message, /Signature expired/);

await rekognition.deleteCollection({ CollectionId: COLLECTION }).promise();
console.log("v2: ok");
