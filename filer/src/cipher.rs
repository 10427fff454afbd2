//! Chunk sealing for encryption at rest: each chunk's bytes are sealed on their own with
//! AES-256-GCM under the object's data key, so a range read opens only the chunks it
//! needs. The filer never holds keys: a caller (the S3 gateway) hands a [`ChunkKey`] to a
//! write and to a read. Format: `docs/formats/encryption.md`.

use bytes::Bytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::error::FilerError;

/// Bytes a sealed chunk adds to its plaintext: the nonce before it, the tag after it.
pub const OVERHEAD: u64 = (NONCE_LEN + TAG_LEN) as u64;
const TAG_LEN: usize = 16;

/// Authenticated data of every sealed chunk: names the format, so a chunk sealed for
/// another purpose under the same key does not open as one of these.
const AAD: &[u8] = b"kelp chunk v1";

/// A 256-bit data key that seals and opens chunks. Its bytes never leave the process.
pub struct ChunkKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkKey(..)")
    }
}

impl ChunkKey {
    pub fn new(key: &[u8; 32]) -> Result<ChunkKey, FilerError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| FilerError::Internal("AES-256-GCM refused a 32-byte key".into()))?;
        Ok(ChunkKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plain`. The nonce is 96 random bits, fresh for
    /// every chunk (a key seals at most the chunks of one object, far below the 2^32
    /// chunks where random nonces would risk a repeat).
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, FilerError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| FilerError::Internal("sealing a chunk failed".into()))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// The plaintext of a sealed chunk; an error if it was not sealed with this key or
    /// was changed since.
    pub fn open(&self, sealed: &[u8]) -> Result<Bytes, FilerError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(FilerError::Internal(format!(
                "a sealed chunk of {} bytes is shorter than its nonce and tag",
                sealed.len()
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[..NONCE_LEN]);
        let mut buf = sealed.to_vec();
        let plain_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| {
                FilerError::Internal(
                    "a chunk failed authentication: wrong key, or its bytes were changed".into(),
                )
            })?
            .len();
        Ok(Bytes::from(buf).slice(NONCE_LEN..NONCE_LEN + plain_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_fresh_nonces() {
        let k = ChunkKey::new(&[7u8; 32]).unwrap();
        let plain = b"some bytes of an object".to_vec();
        let a = k.seal(&plain).unwrap();
        let b = k.seal(&plain).unwrap();
        assert_eq!(a.len() as u64, plain.len() as u64 + OVERHEAD);
        assert_ne!(a, b, "every seal draws a new nonce");
        assert!(!a.windows(plain.len()).any(|w| w == plain.as_slice()));
        assert_eq!(k.open(&a).unwrap(), plain);
        assert_eq!(k.open(&b).unwrap(), plain);
        assert_eq!(k.open(&k.seal(b"").unwrap()).unwrap(), &b""[..]);
    }

    #[test]
    fn refuses_other_keys_changed_bytes_and_short_input() {
        let k = ChunkKey::new(&[7u8; 32]).unwrap();
        let other = ChunkKey::new(&[8u8; 32]).unwrap();
        let mut s = k.seal(b"payload").unwrap();
        assert!(other.open(&s).is_err());
        let last = s.len() - 1;
        s[last] ^= 1;
        assert!(k.open(&s).is_err());
        s[last] ^= 1;
        s[NONCE_LEN] ^= 1;
        assert!(k.open(&s).is_err());
        s[NONCE_LEN] ^= 1;
        s[0] ^= 1;
        assert!(k.open(&s).is_err(), "the nonce is part of what is checked");
        assert!(k.open(&[0u8; 27]).is_err());
        assert!(k.open(&[]).is_err());
    }
}
