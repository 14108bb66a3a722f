"""boto3 (unchanged library code) against facegate's Rekognition-compatible API, driven by
crates/facegate-server/tests/rekognition.rs, which starts the server and passes (environment):
FG_ENDPOINT, FG_KEY, FG_SECRET (a key of a client with faces:read faces:write liveness),
FG_READ_KEY, FG_READ_SECRET (a key of a client with faces:read only), FG_ISSUER, FG_TOKEN (a /v1
bearer token of the first client), FG_PHOTOS (testdata/faces), FG_PAIR (two faces side by side),
FG_NOFACE (an image without a face), FG_NOTIMAGE (bytes that are no image), FG_WINDOW (the server's
signature window, seconds), FG_LIVE_SESSION (a liveness session of the first client that passed).
Every failure is an AssertionError; the last line printed is "boto3: ok"."""

import base64
import datetime
import json
import os
import time
import urllib.request

import boto3
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

E = os.environ
REGION = "eu-west-1"
COLLECTION = "boto-staff"


def photo(rel):
    with open(os.path.join(E["FG_PHOTOS"], rel), "rb") as f:
        return f.read()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def client(key=None, secret=None):
    return boto3.client(
        "rekognition",
        endpoint_url=E["FG_ENDPOINT"],
        region_name=REGION,
        aws_access_key_id=key or E["FG_KEY"],
        aws_secret_access_key=secret or E["FG_SECRET"],
        # One attempt: a refused signature must reach the test, not be retried.
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


rek = client()


def error_of(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e
    raise AssertionError(f"{fn.__name__} succeeded, an error was expected")


def code(e):
    return e.response["Error"]["Code"]


# facegate's similarity -> Rekognition's (routes/rekognition.rs, docs/rekognition.md).
KNOTS = [(0, 0), (50, 50), (60, 70), (70, 80), (80, 90), (90, 99), (100, 100)]


def to_rekognition(s):
    for (a, ra), (b, rb) in zip(KNOTS, KNOTS[1:]):
        if s <= b:
            return ra + (s - a) / (b - a) * (rb - ra)
    return 100.0


def v1(method, path, body=None):
    req = urllib.request.Request(
        E["FG_ISSUER"] + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + E["FG_TOKEN"], "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def b64(b):
    return base64.b64encode(b).decode()


def in_unit(box):
    return all(0 <= box[k] <= 1 for k in ("Width", "Height", "Left", "Top")) and box["Width"] > 0


# ---------------------------------------------------------------- collections

r = rek.create_collection(CollectionId=COLLECTION)
assert r["StatusCode"] == 200, r
assert r["CollectionArn"].endswith(":collection/" + COLLECTION), r
assert r["FaceModelVersion"], r
try:
    rek.create_collection(CollectionId=COLLECTION)
    raise AssertionError("a second CreateCollection succeeded")
except rek.exceptions.ResourceAlreadyExistsException as e:
    assert "already exists" in str(e), e
assert COLLECTION in rek.list_collections()["CollectionIds"]
d = rek.describe_collection(CollectionId=COLLECTION)
assert d["FaceCount"] == 0 and d["CollectionARN"].endswith(COLLECTION), d

# ---------------------------------------------------------------- index

PEOPLE = {
    "alice": ["deepface/person_img1/img1.jpg", "deepface/person_img1/img2.jpg"],
    "bob": ["deepface/person_img3/img3.jpg", "deepface/person_img3/img53.jpg"],
}
face_ids = {}
for name, files in PEOPLE.items():
    for f in files:
        r = rek.index_faces(
            CollectionId=COLLECTION,
            Image={"Bytes": photo(f)},
            ExternalImageId=name,
            MaxFaces=1,
            QualityFilter="AUTO",
            DetectionAttributes=["ALL"],
        )
        assert len(r["FaceRecords"]) == 1, (f, r)
        rec = r["FaceRecords"][0]
        assert rec["Face"]["ExternalImageId"] == name
        assert in_unit(rec["Face"]["BoundingBox"]), rec
        assert 50 <= rec["Face"]["Confidence"] <= 100, rec
        detail = rec["FaceDetail"]
        assert set(detail["Pose"]) == {"Roll", "Yaw", "Pitch"}, detail
        assert 0 <= detail["Quality"]["Brightness"] <= 100 and 0 <= detail["Quality"]["Sharpness"] <= 100
        assert [l["Type"] for l in detail["Landmarks"]] == ["eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"]
        assert detail["EyesOpen"]["Value"] is True, detail
        assert r["FaceModelVersion"] == d["FaceModelVersion"]
        face_ids.setdefault(name, []).append(rec["Face"]["FaceId"])

# Two faces, at most one indexed: the other is reported with AWS's reason.
r = rek.index_faces(CollectionId=COLLECTION, Image={"Bytes": read(E["FG_PAIR"])}, ExternalImageId="alice", MaxFaces=1)
# (the large face on the left is alice's: person_img1/img10)
assert len(r["FaceRecords"]) == 1 and len(r["UnindexedFaces"]) == 1, r
assert r["UnindexedFaces"][0]["Reasons"] == ["EXCEEDS_MAX_FACES"], r
pair_face = r["FaceRecords"][0]["Face"]["FaceId"]
# No face: nothing indexed, no error (as Rekognition).
r = rek.index_faces(CollectionId=COLLECTION, Image={"Bytes": read(E["FG_NOFACE"])})
assert r["FaceRecords"] == [] and r["UnindexedFaces"] == [], r

listed = rek.list_faces(CollectionId=COLLECTION, MaxResults=1000)["Faces"]
assert len(listed) == 5, listed
assert all(in_unit(f["BoundingBox"]) for f in listed), listed
page = rek.list_faces(CollectionId=COLLECTION, MaxResults=2)
assert len(page["Faces"]) == 2 and page["NextToken"], page
rest = rek.list_faces(CollectionId=COLLECTION, MaxResults=1000, NextToken=page["NextToken"])
assert len(rest["Faces"]) == 3 and "NextToken" not in rest, rest
assert rek.describe_collection(CollectionId=COLLECTION)["FaceCount"] == 5

# ---------------------------------------------------------------- search

# The seed application's exact call.
r = rek.search_faces_by_image(
    CollectionId=COLLECTION, Image={"Bytes": photo("deepface/person_img1/img4.jpg")}, FaceMatchThreshold=90, MaxFaces=1
)
assert len(r["FaceMatches"]) == 1, r
assert r["FaceMatches"][0]["Face"]["ExternalImageId"] == "alice", r
assert r["FaceMatches"][0]["Similarity"] >= 90, r
assert in_unit(r["SearchedFaceBoundingBox"]), r
# A stranger's face matches nobody at 90.
r = rek.search_faces_by_image(
    CollectionId=COLLECTION, Image={"Bytes": photo("deepface/person_img13/" + sorted(os.listdir(os.path.join(E["FG_PHOTOS"], "deepface/person_img13")))[0])},
    FaceMatchThreshold=90, MaxFaces=5,
)
assert r["FaceMatches"] == [], r

r = rek.search_faces(CollectionId=COLLECTION, FaceId=face_ids["bob"][0], FaceMatchThreshold=90, MaxFaces=10)
assert r["SearchedFaceId"] == face_ids["bob"][0]
ids = [m["Face"]["FaceId"] for m in r["FaceMatches"]]
assert face_ids["bob"][0] not in ids and face_ids["bob"][1] in ids, r
assert all(m["Face"]["ExternalImageId"] == "bob" for m in r["FaceMatches"]), r

# ---------------------------------------------------------------- the same matches as /v1

for probe in ["deepface/person_img1/img4.jpg", "deepface/person_img3/img54.jpg", "deepface/person_img1/img10.jpg"]:
    for threshold in (50, 70, 80):
        ours = v1("POST", f"/v1/collections/{COLLECTION}/search", {"image": b64(photo(probe)), "threshold": threshold, "maxFaces": 10})
        theirs = rek.search_faces_by_image(
            CollectionId=COLLECTION, Image={"Bytes": photo(probe)}, FaceMatchThreshold=to_rekognition(threshold), MaxFaces=10
        )
        a = [m["face"]["faceId"] for m in ours["faceMatches"]]
        b = [m["Face"]["FaceId"] for m in theirs["FaceMatches"]]
        assert a == b, (probe, threshold, ours, theirs)
        for m, n in zip(ours["faceMatches"], theirs["FaceMatches"]):
            assert abs(to_rekognition(m["similarity"]) - n["Similarity"]) < 0.05, (m, n)
        if threshold == 50:
            print(probe, [(m["Face"]["ExternalImageId"], m["Similarity"]) for m in theirs["FaceMatches"]])
ours = v1("POST", "/v1/compare", {"sourceImage": b64(photo("deepface/person_img1/img4.jpg")), "targetImage": b64(read(E["FG_PAIR"])), "threshold": 80})
theirs = rek.compare_faces(
    SourceImage={"Bytes": photo("deepface/person_img1/img4.jpg")}, TargetImage={"Bytes": read(E["FG_PAIR"])}, SimilarityThreshold=90
)
assert len(ours["faceMatches"]) == len(theirs["FaceMatches"]) == 1, (ours, theirs)
assert len(ours["unmatchedFaces"]) == len(theirs["UnmatchedFaces"]) == 1, (ours, theirs)
assert abs(to_rekognition(ours["faceMatches"][0]["similarity"]) - theirs["FaceMatches"][0]["Similarity"]) < 0.05
assert in_unit(theirs["SourceImageFace"]["BoundingBox"]) and in_unit(theirs["FaceMatches"][0]["Face"]["BoundingBox"])
assert theirs["UnmatchedFaces"][0]["BoundingBox"]["Left"] > 0.5, theirs  # the small face on the right

r = rek.detect_faces(Image={"Bytes": read(E["FG_PAIR"])}, Attributes=["ALL"])
assert len(r["FaceDetails"]) == 2, r
assert all("EyesOpen" in f and "MouthOpen" in f and "Smile" in f for f in r["FaceDetails"]), r
r = rek.detect_faces(Image={"Bytes": photo("deepface/person_img1/img4.jpg")})
assert len(r["FaceDetails"]) == 1 and "EyesOpen" not in r["FaceDetails"][0], r

# ---------------------------------------------------------------- delete

r = rek.delete_faces(CollectionId=COLLECTION, FaceIds=[pair_face, "no-such-face"])
assert r["DeletedFaces"] == [pair_face], r
assert r["UnsuccessfulFaceDeletions"] == [{"FaceId": "no-such-face", "Reasons": ["FACE_NOT_FOUND"]}], r
assert rek.describe_collection(CollectionId=COLLECTION)["FaceCount"] == 4

# ---------------------------------------------------------------- errors an SDK knows

try:
    rek.search_faces_by_image(CollectionId="no-such-collection", Image={"Bytes": photo("deepface/person_img1/img4.jpg")})
    raise AssertionError("unknown collection searched")
except rek.exceptions.ResourceNotFoundException as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
try:
    rek.detect_faces(Image={"Bytes": read(E["FG_NOTIMAGE"])})
    raise AssertionError("a non-image was analysed")
except rek.exceptions.InvalidImageFormatException:
    pass
try:
    rek.search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": read(E["FG_NOFACE"])})
    raise AssertionError("an image without a face was searched")
except rek.exceptions.InvalidParameterException as e:
    assert "no faces" in str(e), e
try:
    rek.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "n.jpg"}})
    raise AssertionError("S3Object accepted")
except rek.exceptions.InvalidParameterException as e:
    assert "Bytes" in str(e), e
e = error_of(client(secret=E["FG_SECRET"][:-1] + ("A" if E["FG_SECRET"][-1] != "A" else "B")).list_collections)
assert code(e) == "InvalidSignatureException", e.response
e = error_of(client(key="FGAKNOSUCHKEY0000000").list_collections)
assert code(e) == "UnrecognizedClientException", e.response
# The read-only client may search but not write.
reader = client(E["FG_READ_KEY"], E["FG_READ_SECRET"])
reader.list_collections()
try:
    reader.create_collection(CollectionId="reader-made")
    raise AssertionError("a faces:read client created a collection")
except reader.exceptions.AccessDeniedException:
    pass

# Signed 20 minutes ago (the SDK's clock set back).
real = botocore.auth.get_current_datetime
botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=20)
try:
    e = error_of(rek.list_collections)
finally:
    botocore.auth.get_current_datetime = real
assert code(e) == "InvalidSignatureException" and "Signature expired" in str(e), e.response

# A signature replayed: the same signed request sent again inside the window is AWS's behaviour
# (accepted); once the window has passed it is refused.
captured = {}


def capture(request, **_):
    captured["headers"] = dict(request.headers)


def replay(request, **_):
    for k in ("Authorization", "X-Amz-Date"):
        request.headers[k] = captured["headers"][k]


rek.meta.events.register("before-send.rekognition.ListCollections", capture)
rek.list_collections()
rek.meta.events.unregister("before-send.rekognition.ListCollections", capture)
rek.meta.events.register("before-send.rekognition.ListCollections", replay)
rek.list_collections()  # inside the window
time.sleep(int(E["FG_WINDOW"]) + 2)
e = error_of(rek.list_collections)
rek.meta.events.unregister("before-send.rekognition.ListCollections", replay)
assert code(e) == "InvalidSignatureException" and "Signature expired" in str(e), e.response
rek.list_collections()  # signed afresh: fine

# ---------------------------------------------------------------- liveness

s = rek.create_face_liveness_session(ClientRequestToken="boto-order-1")
again = rek.create_face_liveness_session(ClientRequestToken="boto-order-1")
assert s["SessionId"] and again["SessionId"] == s["SessionId"], (s, again)
r = rek.get_face_liveness_session_results(SessionId=s["SessionId"])
assert r["Status"] == "CREATED" and "Confidence" not in r, r
r = rek.get_face_liveness_session_results(SessionId=E["FG_LIVE_SESSION"])
assert r["Status"] == "SUCCEEDED" and r["Confidence"] >= 50, {k: v for k, v in r.items() if k != "ReferenceImage"}
assert len(r["ReferenceImage"]["Bytes"]) > 1000 and r["ReferenceImage"]["Bytes"][:2] == b"\xff\xd8", "a JPEG"
try:
    reader.get_face_liveness_session_results(SessionId=E["FG_LIVE_SESSION"])
    raise AssertionError("a client without the liveness scope read a session")
except reader.exceptions.AccessDeniedException:
    pass
try:
    rek.get_face_liveness_session_results(SessionId="00000000-0000-0000-0000-000000000000")
    raise AssertionError("unknown session read")
except rek.exceptions.SessionNotFoundException:
    pass

rek.delete_collection(CollectionId=COLLECTION)
try:
    rek.describe_collection(CollectionId=COLLECTION)
    raise AssertionError("deleted collection described")
except rek.exceptions.ResourceNotFoundException:
    pass
print("boto3: ok")
