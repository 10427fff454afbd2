//! GetObjectAttributes: an object's ETag, checksum, size, storage class and, for a
//! multipart object, its parts (paged by part number), without reading any data.

use s3s::dto::*;
use s3s::{S3Request, S3Response};

use crate::checksum;
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::meta;

/// Parts listed per page when the request names no `max-parts` (as S3).
const DEFAULT_MAX_PARTS: i32 = 1000;

impl Gateway {
    pub async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> GatewayResult<S3Response<GetObjectAttributesOutput>> {
        let i = &req.input;
        let e = self
            .object_or_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        // The header is a comma-separated list; s3s may hand it over as one item.
        let wanted = |name: &str| {
            i.object_attributes
                .iter()
                .flat_map(|a| a.as_str().split(','))
                .any(|a| a.trim().eq_ignore_ascii_case(name))
        };
        let mut out = GetObjectAttributesOutput {
            last_modified: Some(meta::last_modified(&e)),
            version_id: crate::versions::shown_id(&e),
            ..Default::default()
        };
        if wanted(ObjectAttributes::ETAG) {
            // S3 gives this ETag without quotes; s3s's XML writer always adds them.
            out.e_tag = Some(ETag::Strong(meta::etag(&e)));
        }
        if wanted(ObjectAttributes::CHECKSUM)
            && let Some((mut c, t)) = checksum::stored(&e)
        {
            c.checksum_type = Some(t);
            out.checksum = Some(c);
        }
        if wanted(ObjectAttributes::OBJECT_SIZE) {
            out.object_size = i64::try_from(meta::size(&e)).ok();
        }
        if wanted(ObjectAttributes::STORAGE_CLASS) {
            out.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
        }
        if wanted(ObjectAttributes::OBJECT_PARTS)
            && let Some(sizes) = meta::part_sizes(&e)
        {
            out.object_parts = Some(parts_page(&sizes, i.part_number_marker, i.max_parts)?);
        }
        Ok(S3Response::new(out))
    }
}

/// One page of a multipart object's parts: those after `marker`, at most `max`.
fn parts_page(
    sizes: &[u64],
    marker: Option<i32>,
    max: Option<i32>,
) -> GatewayResult<GetObjectAttributesParts> {
    let after = marker.unwrap_or(0);
    let max = max.unwrap_or(DEFAULT_MAX_PARTS);
    if after < 0 || max < 0 {
        return Err(GatewayError::InvalidArgument(
            "part-number-marker and max-parts must not be negative".into(),
        ));
    }
    let total = i32::try_from(sizes.len()).unwrap_or(i32::MAX);
    let first = usize::try_from(after).unwrap_or(usize::MAX);
    let take = usize::try_from(max).unwrap_or(0);
    let parts: Vec<ObjectPart> = sizes
        .iter()
        .enumerate()
        .skip(first)
        .take(take)
        .map(|(n, size)| ObjectPart {
            part_number: i32::try_from(n + 1).ok(),
            size: i64::try_from(*size).ok(),
            ..Default::default()
        })
        .collect();
    let last = parts.last().and_then(|p| p.part_number).unwrap_or(after);
    Ok(GetObjectAttributesParts {
        total_parts_count: Some(total),
        part_number_marker: Some(after),
        next_part_number_marker: Some(last),
        max_parts: Some(max),
        is_truncated: Some(last < total),
        parts: Some(parts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_parts() {
        let sizes = [5, 5, 5, 1];
        let p = parts_page(&sizes, None, Some(2)).unwrap();
        assert_eq!(p.total_parts_count, Some(4));
        assert_eq!(p.is_truncated, Some(true));
        assert_eq!(p.next_part_number_marker, Some(2));
        let nums: Vec<_> = p.parts.unwrap().iter().map(|x| x.part_number).collect();
        assert_eq!(nums, vec![Some(1), Some(2)]);
        let p = parts_page(&sizes, Some(2), Some(5)).unwrap();
        assert_eq!(p.is_truncated, Some(false));
        let parts = p.parts.unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].size, Some(1));
        assert_eq!(p.next_part_number_marker, Some(4));
        assert!(parts_page(&sizes, Some(-1), None).is_err());
        let p = parts_page(&sizes, Some(9), None).unwrap();
        assert_eq!(p.parts.unwrap().len(), 0);
        assert_eq!(p.is_truncated, Some(false));
    }
}
