//! Checking a client's password proof: `mysql_native_password`,
//! `caching_sha2_password` fast auth (a SHA-256 proof) and its full
//! authentication (the password itself, over TLS or RSA-encrypted).
//!
//! For mysql_native_password the client sends SHA1(password) XOR
//! SHA1(scramble + SHA1(SHA1(password))); with the password from the config
//! we compute the same and compare in constant time.

use crate::backend::Credential;
use mysql_common::scramble::{scramble_native, scramble_sha256};
use rand::Rng;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";

/// A fresh 20-byte challenge. Bytes are printable ASCII without NUL or `$`
/// because some clients treat the scramble as a C string.
pub fn new_scramble() -> [u8; 20] {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%&()*+,-./:;<=>?@[]^_{|}~";
    let mut rng = rand::thread_rng();
    let mut out = [0u8; 20];
    for b in &mut out {
        *b = ALPHABET[rng.gen_range(0..ALPHABET.len())];
    }
    out
}

/// True when `token` proves knowledge of `password` for this `scramble`.
pub fn verify_native(scramble: &[u8; 20], password: &str, token: &[u8]) -> bool {
    if password.is_empty() {
        return token.is_empty();
    }
    match scramble_native(scramble, password.as_bytes()) {
        Some(expected) => constant_time_eq(&expected, token),
        None => false,
    }
}

/// True when `token` is the caching_sha2_password proof of `password` for
/// this `scramble`: XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)), scramble)).
pub fn verify_sha2(scramble: &[u8; 20], password: &str, token: &[u8]) -> bool {
    if password.is_empty() {
        return token.is_empty();
    }
    match scramble_sha256(scramble, password.as_bytes()) {
        Some(expected) => constant_time_eq(&expected, token),
        None => false,
    }
}

/// SHA1(SHA1(password)) from its `mysql.user` form: `*` + 40 hex digits.
pub fn parse_native_hash(text: &str) -> Option<[u8; 20]> {
    let hex = text.strip_prefix('*')?;
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// True when `token` proves knowledge of the password whose double SHA-1
/// is `stage2`, without knowing the password.
pub fn verify_native_hash(scramble: &[u8; 20], stage2: &[u8; 20], token: &[u8]) -> bool {
    native_stage1(scramble, stage2, token).is_some()
}

/// SHA1(password) recovered from a client's mysql_native_password proof:
/// the proof is SHA1(pw) XOR SHA1(scramble + stage2), so XOR-ing it back
/// gives SHA1(pw), whose SHA-1 must be `stage2`. `None` when the proof is
/// wrong.
pub fn native_stage1(scramble: &[u8; 20], stage2: &[u8; 20], token: &[u8]) -> Option<[u8; 20]> {
    use sha1::{Digest, Sha1};
    if token.len() != 20 {
        return None;
    }
    let mask = Sha1::new()
        .chain_update(scramble)
        .chain_update(stage2)
        .finalize();
    let mut stage1 = [0u8; 20];
    for (out, (t, m)) in stage1.iter_mut().zip(token.iter().zip(mask.iter())) {
        *out = t ^ m;
    }
    constant_time_eq(&Sha1::digest(stage1), stage2).then_some(stage1)
}

/// What the backends are logged in to with for `user`, whose client
/// authenticated with `proof`: the configured password when there is one;
/// else the password the client sent in clear, or the SHA1(password) its
/// native proof reveals against the account's hash.
pub fn backend_credential(
    user: &crate::config::UserConfig,
    scramble: &[u8; 20],
    proof: Proof<'_>,
) -> Credential {
    let stage2 = parse_native_hash(&user.password_hash);
    match (stage2, proof) {
        (Some(_), Proof::Cleartext(password)) if user.password.is_empty() => {
            Credential::password(password)
        }
        (Some(stage2), Proof::Native(token)) if user.password.is_empty() => {
            match native_stage1(scramble, &stage2, token) {
                Some(stage1) => Credential::NativeStage1(stage1),
                None => Credential::password(b""),
            }
        }
        _ => Credential::password(user.password.as_bytes()),
    }
}

/// What a client answered the challenge with.
#[derive(Clone, Copy)]
pub enum Proof<'a> {
    /// A mysql_native_password or caching_sha2 fast-auth scramble.
    Native(&'a [u8]),
    /// The password itself (caching_sha2 full authentication).
    Cleartext(&'a [u8]),
}

/// Checks a client's proof for `user`: against `password_hash` when the
/// config gives one, else against the password.
pub fn verify_user(user: &crate::config::UserConfig, scramble: &[u8; 20], token: &[u8]) -> bool {
    match parse_native_hash(&user.password_hash) {
        Some(stage2) => verify_native_hash(scramble, &stage2, token),
        None => verify_native(scramble, &user.password, token),
    }
}

/// Checks a password received in clear (caching_sha2_password full
/// authentication) against `user`'s password or native hash.
pub fn verify_cleartext(user: &crate::config::UserConfig, password: &[u8]) -> bool {
    use sha1::{Digest, Sha1};
    match parse_native_hash(&user.password_hash) {
        Some(stage2) => constant_time_eq(&Sha1::digest(Sha1::digest(password)), &stage2),
        None => constant_time_eq(user.password.as_bytes(), password),
    }
}

/// The RSA key pair with which clients without TLS encrypt their password
/// (caching_sha2_password's "request public key" exchange). Generated once
/// per process, off the async threads, on first need, as MySQL does when it
/// has no key files.
pub async fn rsa_key() -> Option<&'static rsa::RsaPrivateKey> {
    static KEY: tokio::sync::OnceCell<Option<rsa::RsaPrivateKey>> =
        tokio::sync::OnceCell::const_new();
    KEY.get_or_init(|| async {
        let generated =
            tokio::task::spawn_blocking(|| rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048))
                .await;
        match generated {
            Ok(Ok(key)) => Some(key),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "RSA key generation failed");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "RSA key generation task failed");
                None
            }
        }
    })
    .await
    .as_ref()
}

/// The public half in the PEM form clients expect (SubjectPublicKeyInfo).
pub fn public_key_pem(key: &rsa::RsaPrivateKey) -> Option<String> {
    use rsa::pkcs8::EncodePublicKey;
    key.to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .ok()
}

/// Decrypts a client's RSA-encrypted password: the client encrypts
/// (password + NUL) XOR scramble (repeated) with OAEP/SHA-1, as MySQL 8
/// servers require. Returns the password without the NUL.
///
/// OAEP only, a ciphertext of exactly the key's size, and blinded
/// decryption (RUSTSEC-2023-0071); every failure looks the same to the
/// caller, so the exchange is no padding oracle. Costs a 2048-bit private
/// key operation: call it off the async threads.
pub fn decrypt_password(
    key: &rsa::RsaPrivateKey,
    scramble: &[u8; 20],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    use rsa::traits::PublicKeyParts;
    if ciphertext.len() != key.size() {
        return None;
    }
    let mut rng = rand::rngs::OsRng;
    let plain = key
        .decrypt_blinded(&mut rng, rsa::Oaep::new::<sha1::Sha1>(), ciphertext)
        .ok()?;
    let mut password: Vec<u8> = plain
        .iter()
        .zip(scramble.iter().cycle())
        .map(|(p, s)| p ^ s)
        .collect();
    if password.pop() != Some(0) {
        return None;
    }
    Some(password)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_right_proof_and_rejects_others() {
        let scramble = new_scramble();
        let token = scramble_native(&scramble, b"secret").unwrap();
        assert!(verify_native(&scramble, "secret", &token));
        assert!(!verify_native(&scramble, "Secret", &token));
        assert!(!verify_native(&scramble, "secret", &token[..19]));
        assert!(!verify_native(&scramble, "secret", b""));
        assert!(verify_native(&scramble, "", b""));
        assert!(!verify_native(&scramble, "", &token));
    }

    #[test]
    fn a_native_hash_verifies_like_the_password() {
        let scramble = new_scramble();
        let token = scramble_native(&scramble, b"app").unwrap();
        let stage2 = parse_native_hash("*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3").unwrap();
        assert!(verify_native_hash(&scramble, &stage2, &token));
        let wrong = scramble_native(&scramble, b"App").unwrap();
        assert!(!verify_native_hash(&scramble, &stage2, &wrong));
        assert!(!verify_native_hash(&scramble, &stage2, b""));
        assert_eq!(parse_native_hash("5BCB"), None);
        assert_eq!(
            parse_native_hash("*ZZCB3E6AC345B435C7C2E6B7949A04CE6F6563D3"),
            None
        );
    }

    #[test]
    fn a_hash_only_user_logs_in_to_backends_with_what_its_proof_reveals() {
        let scramble = new_scramble();
        let mut user: crate::config::UserConfig = toml::from_str(
            "name = 'app'\npassword_hash = '*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3'",
        )
        .unwrap();
        let token = scramble_native(&scramble, b"app").unwrap();
        let backend_nonce = new_scramble();
        let credential = backend_credential(&user, &scramble, Proof::Native(&token));
        assert!(matches!(credential, Credential::NativeStage1(_)));
        assert_eq!(
            credential.native_proof(&backend_nonce),
            scramble_native(&backend_nonce, b"app").unwrap()
        );
        let sent = backend_credential(&user, &scramble, Proof::Cleartext(b"app"));
        assert_eq!(sent.cleartext(), Some(&b"app"[..]));
        // A configured backend password wins over anything the client sent.
        user.password = "backend".into();
        let configured = backend_credential(&user, &scramble, Proof::Native(&token));
        assert_eq!(configured.cleartext(), Some(&b"backend"[..]));
    }

    #[test]
    fn sha2_proofs() {
        let scramble = new_scramble();
        let token = scramble_sha256(&scramble, b"app").unwrap();
        assert!(verify_sha2(&scramble, "app", &token));
        assert!(!verify_sha2(&scramble, "App", &token));
        assert!(!verify_sha2(&scramble, "app", &token[..31]));
    }

    #[test]
    fn cleartext_checks_password_or_hash() {
        let mut user: crate::config::UserConfig =
            toml::from_str("name = 'app'\npassword = 'app'").unwrap();
        assert!(verify_cleartext(&user, b"app"));
        assert!(!verify_cleartext(&user, b"App"));
        assert!(!verify_cleartext(&user, b""));
        user.password = "other-backend-password".into();
        user.password_hash = "*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3".into();
        assert!(verify_cleartext(&user, b"app"));
        assert!(!verify_cleartext(&user, b"other-backend-password"));
    }

    #[tokio::test]
    async fn rsa_password_roundtrip_as_clients_encrypt_it() {
        let key = rsa_key().await.expect("key generated");
        let pem = public_key_pem(key).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let scramble = new_scramble();
        // What libmysqlclient / PyMySQL do: XOR (pw + NUL) with the
        // scramble, then RSA-OAEP(SHA-1) with the server's public key.
        let mut plain = "s3cret-🔑".as_bytes().to_vec();
        plain.push(0);
        for (i, b) in plain.iter_mut().enumerate() {
            *b ^= scramble[i % 20];
        }
        let public = key.to_public_key();
        let sealed = public
            .encrypt(
                &mut rand::rngs::OsRng,
                rsa::Oaep::new::<sha1::Sha1>(),
                &plain,
            )
            .unwrap();
        let password = decrypt_password(key, &scramble, &sealed).unwrap();
        assert_eq!(password, "s3cret-🔑".as_bytes());
        let other = new_scramble();
        assert_ne!(
            decrypt_password(key, &other, &sealed).as_deref(),
            Some("s3cret-🔑".as_bytes())
        );
        assert_eq!(decrypt_password(key, &scramble, &sealed[1..]), None);
    }

    #[test]
    fn scramble_has_no_nul() {
        assert!(new_scramble().iter().all(|&b| b != 0 && b != b'$'));
    }
}
