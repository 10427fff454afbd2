//! Bucket lifecycle rules: `PutBucketLifecycleConfiguration`,
//! `GetBucketLifecycleConfiguration` and `DeleteBucketLifecycle`, the rules kept as JSON
//! in the bucket entry's `X-Kelp-S3-Lifecycle`. [`rules`] is the model: how a PUT is
//! checked, what a GET answers, and when objects, noncurrent versions and multipart
//! uploads fall due.

pub mod rules;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kelp_filer::entry::Entry;
use s3s::dto::{
    DeleteBucketLifecycleInput, DeleteBucketLifecycleOutput, GetBucketLifecycleConfigurationInput,
    GetBucketLifecycleConfigurationOutput, PutBucketLifecycleConfigurationInput,
    PutBucketLifecycleConfigurationOutput,
};
use s3s::{S3Request, S3Response};

use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;

/// The bucket attribute holding the lifecycle configuration ([`rules::Config`] as JSON).
pub const LIFECYCLE_KEY: &str = "X-Kelp-S3-Lifecycle";

/// The lifecycle configuration of a bucket entry, if it has one (one that cannot be
/// read counts as none).
pub fn config_of(bucket: &Entry) -> Option<rules::Config> {
    bucket
        .extended
        .get(LIFECYCLE_KEY)
        .and_then(|v| serde_json::from_slice(v).ok())
}

/// Lifecycle configurations of buckets, each read from the store at most once a
/// second, so GET and HEAD (which answer `x-amz-expiration`) pay no store read per
/// request for it.
#[derive(Default)]
pub struct ConfigCache {
    map: std::sync::Mutex<HashMap<String, Cached>>,
}

/// When a bucket's rules were read, and what they were.
type Cached = (Instant, Option<Arc<rules::Config>>);

/// How long a cached configuration is used.
const CACHE_FOR: Duration = Duration::from_secs(1);
/// Buckets remembered at most (the cache starts over beyond).
const CACHE_MAX: usize = 10_000;

impl ConfigCache {
    /// Forgets `bucket`'s rules (they were just changed through this gateway).
    pub fn forget(&self, bucket: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(bucket);
    }

    /// The lifecycle rules of `bucket` (`None`: none, or no such bucket).
    pub async fn get(&self, gw: &Gateway, bucket: &str) -> Option<Arc<rules::Config>> {
        if let Some((at, c)) = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(bucket)
            && at.elapsed() < CACHE_FOR
        {
            return c.clone();
        }
        let entry = gw.filer.find(&gw.paths.bucket(bucket)).await.ok()??;
        let config = config_of(&entry).map(Arc::new);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(bucket.to_string(), (Instant::now(), config.clone()));
        config
    }
}

impl Gateway {
    /// Checks the rules as S3 does and replaces the bucket's configuration with them.
    pub async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> GatewayResult<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let i = req.input;
        let bucket = self.bucket_entry(&i.bucket).await?;
        let dto = i.lifecycle_configuration.ok_or_else(|| {
            GatewayError::MalformedXml("the request has no LifecycleConfiguration".into())
        })?;
        let config = rules::Config::from_dto(dto)?;
        let json =
            serde_json::to_vec(&config).map_err(|e| GatewayError::Internal(e.to_string()))?;
        self.filer
            .set_extended(&bucket.path, vec![(LIFECYCLE_KEY.to_string(), json)], None)
            .await?;
        self.lifecycle_cache.forget(&i.bucket);
        Ok(S3Response::new(
            PutBucketLifecycleConfigurationOutput::default(),
        ))
    }

    /// The bucket's rules, or 404 `NoSuchLifecycleConfiguration`.
    pub async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> GatewayResult<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let name = &req.input.bucket;
        let bucket = self.bucket_entry(name).await?;
        let config = config_of(&bucket).ok_or_else(|| GatewayError::NotConfigured {
            code: "NoSuchLifecycleConfiguration",
            msg: format!("the bucket {name} has no lifecycle configuration"),
        })?;
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(config.to_dto()),
            ..GetBucketLifecycleConfigurationOutput::default()
        }))
    }

    /// Removes the bucket's lifecycle configuration (204, also when it had none).
    pub async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> GatewayResult<S3Response<DeleteBucketLifecycleOutput>> {
        let bucket = self.bucket_entry(&req.input.bucket).await?;
        self.filer
            .set_extended(
                &bucket.path,
                Vec::new(),
                Some(vec![LIFECYCLE_KEY.to_string()]),
            )
            .await?;
        self.lifecycle_cache.forget(&req.input.bucket);
        Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
    }
}
