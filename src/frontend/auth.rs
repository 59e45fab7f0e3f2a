//! Checking a client's password proof for `mysql_native_password`.
//!
//! The client sends SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)));
//! with the password from the config we compute the same and compare in
//! constant time.

use mysql_common::scramble::scramble_native;
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
    fn scramble_has_no_nul() {
        assert!(new_scramble().iter().all(|&b| b != 0 && b != b'$'));
    }
}
