//! What splitrail logs in to backends with on a client's behalf.
//!
//! A user from `[[users]]` with a password gives it. A user known only by
//! its `mysql_native_password` hash (an account loaded from the servers,
//! or `password_hash` in the config) cannot: splitrail recovers
//! SHA1(password) from the client's own proof instead, which answers any
//! native challenge without revealing the password, as MaxScale does.

use sha1::{Digest, Sha1};
use std::sync::Arc;

#[derive(Clone)]
pub enum Credential {
    /// The password itself: from the config, or sent by the client in
    /// caching_sha2_password's full authentication.
    Password(Arc<[u8]>),
    /// SHA1(password): answers mysql_native_password challenges only.
    NativeStage1([u8; 20]),
}

impl Credential {
    pub fn password(password: &[u8]) -> Credential {
        Credential::Password(password.into())
    }

    /// The mysql_native_password answer to `nonce`:
    /// SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))); empty for an empty
    /// password, as the server expects.
    pub fn native_proof(&self, nonce: &[u8]) -> Vec<u8> {
        let stage1: [u8; 20] = match self {
            Credential::Password(p) if p.is_empty() => return Vec::new(),
            Credential::Password(p) => Sha1::digest(p).into(),
            Credential::NativeStage1(stage1) => *stage1,
        };
        let nonce = nonce.strip_suffix(&[0]).unwrap_or(nonce);
        let nonce = nonce.get(..20).unwrap_or(nonce);
        let mask = Sha1::new()
            .chain_update(nonce)
            .chain_update(Sha1::digest(stage1))
            .finalize();
        stage1.iter().zip(mask.iter()).map(|(s, m)| s ^ m).collect()
    }

    /// The password in clear, when splitrail knows it (caching_sha2
    /// backends need it).
    pub fn cleartext(&self) -> Option<&[u8]> {
        match self {
            Credential::Password(p) => Some(p),
            Credential::NativeStage1(_) => None,
        }
    }
}

impl std::fmt::Debug for Credential {
    // Neither a password nor a hash ever reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password(_) => f.write_str("Password(<redacted>)"),
            Credential::NativeStage1(_) => f.write_str("NativeStage1(<redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::scramble::scramble_native;

    #[test]
    fn stage1_answers_like_the_password() {
        let nonce = b"0123456789abcdefghij";
        let from_password = Credential::password(b"s3cret").native_proof(nonce);
        let stage1: [u8; 20] = Sha1::digest(b"s3cret").into();
        let from_stage1 = Credential::NativeStage1(stage1).native_proof(nonce);
        assert_eq!(from_password, from_stage1);
        assert_eq!(
            Some(from_password.as_slice().try_into().unwrap()),
            scramble_native(nonce, b"s3cret")
        );
        // The greeting's nonce often carries a trailing NUL.
        let mut with_nul = nonce.to_vec();
        with_nul.push(0);
        assert_eq!(
            Credential::password(b"s3cret").native_proof(&with_nul),
            from_stage1
        );
        assert!(Credential::password(b"").native_proof(nonce).is_empty());
    }
}
