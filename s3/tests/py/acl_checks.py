"""ACLs, object ownership and the public access block (imported by s3_checks.py),
with the test stack's identities: admin (account "admin"), admin2 (another account,
"acct2"), reader (no rights on acl-bucket of its own) and anonymous requests."""

import json

from s3_checks import client, code_of, unsigned

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def acls(endpoint, ak, sk):
    admin = client(endpoint, ak, sk)
    admin2 = client(endpoint, "ADMIN2KEY", "admin2secret")
    reader = client(endpoint, "READERKEY", "readersecret")
    b = "acl-bucket"
    url = f"{endpoint}/{b}"
    admin.create_bucket(Bucket=b)

    # Owners: the creating account; another account cannot take the name.
    acl = admin.get_bucket_acl(Bucket=b)
    assert acl["Owner"]["ID"] == "admin", acl
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [("admin", "FULL_CONTROL")]
    assert code_of(admin2.create_bucket, Bucket=b) == "BucketAlreadyExists"
    assert code_of(admin.create_bucket, Bucket=b) == "BucketAlreadyOwnedByYou"
    admin2.create_bucket(Bucket="acct2-bucket")
    assert admin2.list_buckets()["Owner"]["ID"] == "acct2"

    # Canned object ACLs, enforced for anonymous and other accounts.
    admin.put_object(Bucket=b, Key="private.txt", Body=b"private")
    admin.put_object(Bucket=b, Key="public.txt", Body=b"public", ACL="public-read")
    admin.put_object(Bucket=b, Key="auth.txt", Body=b"auth", ACL="authenticated-read")
    assert unsigned("GET", f"{url}/public.txt") == (200, b"public")
    assert unsigned("GET", f"{url}/private.txt")[0] == 403
    assert unsigned("GET", f"{url}/auth.txt")[0] == 403
    assert reader.get_object(Bucket=b, Key="auth.txt")["Body"].read() == b"auth"
    assert code_of(reader.get_object, Bucket=b, Key="private.txt") == "AccessDenied"
    got = admin.get_object_acl(Bucket=b, Key="public.txt")
    assert {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in got["Grants"]} == {
        ("admin", "FULL_CONTROL"), (ALL_USERS, "READ")}, got
    listed = admin.list_objects(Bucket=b)["Contents"]
    assert all(o["Owner"]["ID"] == "admin" for o in listed), listed

    # Grant headers and an AccessControlPolicy body.
    admin.put_object_acl(Bucket=b, Key="private.txt", GrantRead='id="reader"')
    assert reader.get_object(Bucket=b, Key="private.txt")["Body"].read() == b"private"
    admin.put_object_acl(Bucket=b, Key="private.txt", AccessControlPolicy={
        "Owner": {"ID": "admin"},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": "admin"}, "Permission": "FULL_CONTROL"}]})
    assert code_of(reader.get_object, Bucket=b, Key="private.txt") == "AccessDenied"
    assert code_of(admin.put_object_acl, Bucket=b, Key="private.txt",
                   GrantRead='emailAddress="a@example.com"') == "NotImplemented"

    # Bucket ACLs: READ lists, WRITE writes.
    assert code_of(reader.list_objects_v2, Bucket=b) == "AccessDenied"
    admin.put_bucket_acl(Bucket=b, ACL="public-read-write")
    assert unsigned("GET", url)[0] == 200
    assert reader.list_objects_v2(Bucket=b)["KeyCount"] == 3
    assert unsigned("PUT", f"{url}/dropped.txt", b"anonymous")[0] == 200
    admin.put_bucket_acl(Bucket=b, ACL="private")
    assert unsigned("GET", url)[0] == 403
    assert unsigned("PUT", f"{url}/dropped2.txt", b"x")[0] == 403

    # Object ownership: BucketOwnerEnforced turns ACLs off.
    assert code_of(admin.get_bucket_ownership_controls, Bucket=b) == "OwnershipControlsNotFoundError"
    admin.put_bucket_ownership_controls(Bucket=b, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    r = admin.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"]
    assert r == [{"ObjectOwnership": "BucketOwnerEnforced"}], r
    assert unsigned("GET", f"{url}/public.txt")[0] == 403, "ACLs no longer count"
    assert code_of(admin.put_object, Bucket=b, Key="x", Body=b"x", ACL="public-read") == \
        "AccessControlListNotSupported"
    admin.put_object(Bucket=b, Key="x", Body=b"x", ACL="bucket-owner-full-control")
    assert code_of(admin.put_object_acl, Bucket=b, Key="x", ACL="private") == "AccessControlListNotSupported"
    admin.delete_bucket_ownership_controls(Bucket=b)
    assert unsigned("GET", f"{url}/public.txt")[0] == 200

    # Public access block.
    assert code_of(admin.get_public_access_block, Bucket=b) == "NoSuchPublicAccessBlockConfiguration"
    admin.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": False})
    c = admin.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
    assert c == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                 "RestrictPublicBuckets": False}, c
    assert unsigned("GET", f"{url}/public.txt")[0] == 403, "public ACLs are ignored"
    assert code_of(admin.put_object, Bucket=b, Key="y", Body=b"y", ACL="public-read") == "AccessDenied"
    public_policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                               "Resource": f"arn:aws:s3:::{b}/*"}]})
    assert code_of(admin.put_bucket_policy, Bucket=b, Policy=public_policy) == "AccessDenied"
    admin.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    admin.put_bucket_policy(Bucket=b, Policy=public_policy)
    assert unsigned("GET", f"{url}/private.txt")[0] == 403, "a public policy is restricted to the owner"
    admin.delete_public_access_block(Bucket=b)
    assert unsigned("GET", f"{url}/private.txt") == (200, b"private")
    admin.delete_bucket_policy(Bucket=b)
    assert unsigned("GET", f"{url}/private.txt")[0] == 403

    # Copy sources are judged by the source's ACL; ListBuckets shows buckets a policy
    # lets the caller list.
    uploader = client(endpoint, "UPKEY", "upsecret")
    admin.create_bucket(Bucket="shared")
    uploader.copy_object(Bucket="shared", Key="up/copied.txt", CopySource={"Bucket": b, "Key": "public.txt"})
    assert admin.get_object(Bucket="shared", Key="up/copied.txt")["Body"].read() == b"public"
    assert code_of(uploader.copy_object, Bucket="shared", Key="up/nope.txt",
                   CopySource={"Bucket": b, "Key": "private.txt"}) == "AccessDenied"
    assert b not in [x["Name"] for x in uploader.list_buckets()["Buckets"]]
    admin.put_bucket_policy(Bucket=b, Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::uploader:user/uploader"},
        "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{b}"}]}))
    assert b in [x["Name"] for x in uploader.list_buckets()["Buckets"]]
    assert uploader.list_objects_v2(Bucket=b)["KeyCount"] >= 3
