//! A digest's signature: RSASSA-PKCS1-v1_5 with SHA-256 (`SHA256withRSA`) over
//!
//! ```text
//! digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256 of the uncompressed digest) \n previousDigestSignature
//! ```
//!
//! with the literal `null` when there is no previous signature, as CloudTrail signs it and the
//! AWS CLI's `validate-logs` checks it.

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

/// The algorithm CloudTrail signs digests with, as the object's `signature-algorithm`
/// metadata and the digest's `digestSignatureAlgorithm` name it.
pub const ALGORITHM: &str = "SHA256withRSA";

/// The text a digest's signature covers.
pub fn signed_text(
    end_time: &str,
    bucket: &str,
    object: &str,
    digest_sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{end_time}\n{bucket}/{object}\n{digest_sha256_hex}\n{}",
        previous_signature.unwrap_or("null")
    )
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature is not hex")]
    NotHex,
    #[error("the signature does not match the digest with the key {fingerprint}")]
    Mismatch { fingerprint: String },
}

/// Checks `signature_hex` over `text` with `public_key` (PKCS#1 DER, as ListPublicKeys gives
/// it once base64-decoded).
pub fn check(
    text: &str,
    signature_hex: &str,
    public_key: &[u8],
    fingerprint: &str,
) -> Result<(), SignatureError> {
    let signature = hex::decode(signature_hex.trim()).map_err(|_| SignatureError::NotHex)?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(text.as_bytes(), &signature)
        .map_err(|_| SignatureError::Mismatch {
            fingerprint: fingerprint.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_text_names_null_for_a_starting_digest() {
        assert_eq!(
            signed_text("2024-04-30T23:00:00Z", "b", "AWSLogs/k.json.gz", "ab", None),
            "2024-04-30T23:00:00Z\nb/AWSLogs/k.json.gz\nab\nnull"
        );
        assert_eq!(
            signed_text("t", "b", "k", "ab", Some("5ig")),
            "t\nb/k\nab\n5ig"
        );
    }

    #[test]
    fn a_signature_that_is_not_hex_or_not_the_keys_fails() {
        assert_eq!(check("x", "zz", b"key", "f"), Err(SignatureError::NotHex));
        assert!(matches!(
            check("x", "00ff", b"not a key", "f"),
            Err(SignatureError::Mismatch { .. })
        ));
    }
}
