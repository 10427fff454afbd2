//! The AWS SDK for Rust (`aws-sdk-s3`, with its default checksums) against the S3
//! gateway of a real `kelp server` with identities: put, get, a 100 MiB multipart
//! upload, ListObjectsV2 paging and a presigned GET.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_for_rust_with_its_defaults() {
    let keys = scratch();
    let json = keys.path().join("s3.json");
    std::fs::write(
        &json,
        r#"{"identities":[{"name":"sdk","credentials":[{"accessKey":"AKRUSTSDK","secretKey":"rust/sdk/secret"}],"actions":["Admin"]}]}"#,
    )
    .unwrap();
    let config = format!("-s3.config={}", json.display());
    let c = tokio::task::spawn_blocking(move || {
        cluster()
            .servers(&[("", 1)])
            .s3(true)
            .server_args(&[&config])
            .start()
    })
    .await
    .unwrap();
    let endpoint = format!("http://{}", c.s3_addr());
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKRUSTSDK",
            "rust/sdk/secret",
            None,
            None,
            "test",
        ))
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    let bucket = "rust-sdk-bucket";
    s3.create_bucket().bucket(bucket).send().await.unwrap();

    // Put and get, with the SDK's default checksum.
    s3.put_object()
        .bucket(bucket)
        .key("hello.txt")
        .body(ByteStream::from_static(b"hello from the Rust SDK"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(bucket)
        .key("hello.txt")
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"hello from the Rust SDK");

    // 100 MiB in 13 parts of 8 MiB, 4 at a time.
    const PART: usize = 8 << 20;
    let size = 100usize << 20;
    let big: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("big.bin")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let mut parts = Vec::new();
    for (chunk_no, group) in big.chunks(PART).collect::<Vec<_>>().chunks(4).enumerate() {
        let sends = group.iter().enumerate().map(|(j, data)| {
            let n = (chunk_no * 4 + j + 1) as i32;
            let req = s3
                .upload_part()
                .bucket(bucket)
                .key("big.bin")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(data.to_vec()))
                .send();
            async move { (n, req.await.unwrap()) }
        });
        for (n, r) in futures::future::join_all(sends).await {
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(r.e_tag().unwrap())
                    .set_checksum_crc32(r.checksum_crc32().map(str::to_string))
                    .build(),
            );
        }
    }
    let done = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key("big.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        done.e_tag().unwrap().ends_with("-13\""),
        "{:?}",
        done.e_tag()
    );
    let back = s3
        .get_object()
        .bucket(bucket)
        .key("big.bin")
        .send()
        .await
        .unwrap();
    let back = back.body.collect().await.unwrap().into_bytes();
    assert!(
        back.len() == size && back[..] == big[..],
        "the 100 MiB object reads back whole"
    );

    // ListObjectsV2 paging: 250 keys in pages of 100.
    for i in 0..250 {
        s3.put_object()
            .bucket(bucket)
            .key(format!("many/{i:03}"))
            .body(ByteStream::from(i.to_string().into_bytes()))
            .send()
            .await
            .unwrap();
    }
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("many/")
        .max_keys(100)
        .into_paginator()
        .send();
    let (mut keys, mut n) = (Vec::new(), 0);
    while let Some(page) = pages.next().await {
        n += 1;
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    assert_eq!((n, keys.len()), (3, 250));

    // A presigned GET, fetched without the SDK.
    let presigned = s3
        .get_object()
        .bucket(bucket)
        .key("hello.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let resp = reqwest::get(presigned.uri()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello from the Rust SDK");

    tokio::task::spawn_blocking(move || drop(c)).await.unwrap();
}
