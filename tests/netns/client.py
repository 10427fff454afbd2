"""The client side of the partition tests, run inside the lab's client host:

  assign MASTERS SECONDS        /dir/assign round robin on every master; prints one JSON
                                line per answer: {"m": master, "fid": fid or null, "t": secs}
  write MASTERS SECONDS OUT     assigns (replication 010) and PUTs needles for SECONDS;
                                writes the acknowledged fids to OUT (JSON list)
  verify MASTERS IN             every fid of IN must read back byte-exact from every
                                replica the masters list; prints {"checked": n, "bad": [...]}
  s3write S3 SECONDS OUT        boto3 PUTs (with its retries) into the bucket "lab" of the
                                S3 gateway at S3; the acknowledged keys go to OUT
  s3verify S3 IN                every key of IN reads back byte-exact through S3
"""

import hashlib
import json
import sys
import time
import urllib.request


def call(url, method="GET", body=None, timeout=2.0):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception:  # refused, timed out, unreachable
        return 0, b""


def content(fid):
    seed = hashlib.sha256(fid.encode()).digest()
    return seed * (1 + int.from_bytes(seed[:2], "big") % 64)


def assign(masters, seconds):
    start = time.time()
    i = 0
    while time.time() - start < seconds:
        m = masters[i % len(masters)]
        i += 1
        status, body = call(f"http://{m}/dir/assign", timeout=1.0)
        fid = None
        if status == 200:
            try:
                fid = json.loads(body).get("fid")
            except ValueError:
                pass
        print(json.dumps({"m": m, "fid": fid, "t": round(time.time() - start, 3)}), flush=True)
        time.sleep(0.02)


def assign_any(masters, query):
    for m in masters:
        status, body = call(f"http://{m}/dir/assign?{query}", timeout=1.0)
        if status == 200:
            return json.loads(body)
    return None


def write(masters, seconds, out):
    start = time.time()
    acked = []
    tried = 0
    while time.time() - start < seconds:
        a = assign_any(masters, "replication=010")
        if not a or not a.get("fid"):
            time.sleep(0.05)
            continue
        tried += 1
        fid = a["fid"]
        status, _ = call(f"http://{a['url']}/{fid}", method="PUT", body=content(fid), timeout=5.0)
        if status == 201:
            acked.append(fid)
    with open(out, "w") as f:
        json.dump(acked, f)
    print(json.dumps({"tried": tried, "acked": len(acked)}))


def verify(masters, path):
    with open(path) as f:
        fids = json.load(f)
    bad = []
    for fid in fids:
        vid = fid.split(",")[0]
        locs = []
        for m in masters:
            status, body = call(f"http://{m}/dir/lookup?volumeId={vid}")
            if status == 200:
                locs = [l["url"] for l in json.loads(body).get("locations", [])]
                break
        if len(locs) < 2:
            bad.append([fid, "replicas", locs])
            continue
        for l in locs:
            status, body = call(f"http://{l}/{fid}", timeout=5.0)
            if status != 200 or body != content(fid):
                bad.append([fid, l, status])
    print(json.dumps({"checked": len(fids), "bad": bad[:20], "bad_count": len(bad)}))


def s3_client(endpoint):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=f"http://{endpoint}",
        aws_access_key_id="lab",
        aws_secret_access_key="lab",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 10, "mode": "standard"},
                      connect_timeout=3, read_timeout=10),
    )


def s3write(endpoint, seconds, out):
    s3 = s3_client(endpoint)
    s3.create_bucket(Bucket="lab")
    start = time.time()
    acked, failed, i = [], 0, 0
    while time.time() - start < seconds:
        key = f"obj/{i:06}"
        i += 1
        try:
            s3.put_object(Bucket="lab", Key=key, Body=content(key))
            acked.append(key)
        except Exception:  # refused after boto3's retries: not acknowledged
            failed += 1
    with open(out, "w") as f:
        json.dump(acked, f)
    print(json.dumps({"acked": len(acked), "failed": failed}))


def s3verify(endpoint, path):
    with open(path) as f:
        keys = json.load(f)
    s3 = s3_client(endpoint)
    bad = []
    for key in keys:
        try:
            body = s3.get_object(Bucket="lab", Key=key)["Body"].read()
            if body != content(key):
                bad.append([key, "differs"])
        except Exception as e:
            bad.append([key, str(e)[:80]])
    print(json.dumps({"checked": len(keys), "bad": bad[:20], "bad_count": len(bad)}))


def main():
    cmd, masters = sys.argv[1], sys.argv[2].split(",")
    if cmd == "assign":
        assign(masters, float(sys.argv[3]))
    elif cmd == "write":
        write(masters, float(sys.argv[3]), sys.argv[4])
    elif cmd == "verify":
        verify(masters, sys.argv[3])
    elif cmd == "s3write":
        s3write(masters[0], float(sys.argv[3]), sys.argv[4])
    elif cmd == "s3verify":
        s3verify(masters[0], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
