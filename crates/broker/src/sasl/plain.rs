//! The PLAIN mechanism (RFC 4616): one client token,
//! `authzid NUL authcid NUL password`, checked against the users of the
//! listener's JAAS line.
//!
//! Credentials come from Kafka's PLAIN JAAS form,
//! `org.apache.kafka.common.security.plain.PlainLoginModule required
//! username="admin" password="..." user_admin="..." user_alice="...";`,
//! where every `user_<name>="<password>"` entry is a user (`username` and
//! `password` are the broker's own client credentials, unused on a single
//! node). Passwords are compared in constant time, and an unknown user is
//! compared against a stand-in password, so the time to refuse does not tell
//! whether a user exists.

use std::collections::BTreeMap;

use super::Outcome;

/// The login module a PLAIN JAAS line must name.
pub const LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// The PLAIN users of one listener: name → password.
pub struct PlainUsers {
    users: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: passwords never reach a log line.
        f.debug_struct("PlainUsers").field("users", &self.users.keys().collect::<Vec<_>>()).finish()
    }
}

impl PlainUsers {
    /// Parses a PLAIN JAAS line; the error says what is wrong without
    /// repeating the line (it holds passwords).
    pub fn parse(jaas: &str) -> Result<PlainUsers, String> {
        let options = parse_jaas(jaas)?;
        let users: BTreeMap<String, Vec<u8>> = options
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix("user_").map(|name| (name.to_string(), v.into_bytes())))
            .collect();
        if users.keys().any(String::is_empty) {
            return Err("a user_ entry has an empty user name".into());
        }
        Ok(PlainUsers { users })
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks one client token.
    pub fn authenticate(&self, token: &[u8]) -> Outcome {
        let Some((authzid, authcid, password)) = split_token(token) else {
            return Outcome::Failed { user: None, reason: "malformed PLAIN token" };
        };
        let user = String::from_utf8_lossy(authcid).into_owned();
        if !authzid.is_empty() && authzid != authcid {
            return Outcome::Failed { user: Some(user), reason: "authorization id differs from the user name" };
        }
        // Always one comparison of the same cost, known user or not.
        const STAND_IN: &[u8] = b"\0runnel: no such user, a password nobody can send\0";
        let (expected, known) = match self.users.get(user.as_str()) {
            Some(expected) => (expected.as_slice(), true),
            None => (STAND_IN, false),
        };
        let matches = constant_time_eq(expected, password);
        match (known, matches) {
            (true, true) => Outcome::Authenticated { user, reply: Vec::new() },
            (true, false) => Outcome::Failed { user: Some(user), reason: "wrong password" },
            (false, _) => Outcome::Failed { user: Some(user), reason: "unknown user" },
        }
    }
}

/// `authzid NUL authcid NUL password`, with a non-empty user name.
fn split_token(token: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = token.splitn(3, |b| *b == 0);
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    (!authcid.is_empty() && std::str::from_utf8(authcid).is_ok()).then_some((authzid, authcid, password))
}

/// Compares two byte strings in time that depends only on their lengths'
/// maximum, not on where they differ.
pub(crate) fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    let len = expected.len().max(given.len());
    let mut diff = u8::from(expected.len() != given.len());
    for i in 0..len {
        let a = expected.get(i).copied().unwrap_or(0);
        let b = given.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(a ^ b);
    }
    diff == 0
}

/// The options of a JAAS line `<module> required k="v" k2=v2 ... ;`.
fn parse_jaas(jaas: &str) -> Result<BTreeMap<String, String>, String> {
    let text = jaas.trim();
    let text = text.strip_suffix(';').ok_or("the JAAS line must end with ';'")?.trim_end();
    let (module, rest) = text.split_once(char::is_whitespace).ok_or("the JAAS line has no control flag")?;
    if module != LOGIN_MODULE {
        return Err(format!("the login module must be {LOGIN_MODULE}, not {module}"));
    }
    let rest = rest.trim_start();
    let (flag, mut rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !["required", "requisite", "sufficient", "optional"].contains(&flag) {
        return Err(format!("'{flag}' is not a JAAS control flag"));
    }
    let mut options = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(options);
        }
        let (key, after) = rest.split_once('=').ok_or("a JAAS option is not key=value")?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("'{key}' is not a JAAS option name"));
        }
        let (value, after) = jaas_value(after.trim_start())?;
        options.insert(key.to_string(), value);
        rest = after;
    }
}

/// A quoted (with `\"` and `\\` escapes) or bare value, and what follows it.
fn jaas_value(text: &str) -> Result<(String, &str), String> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        return Ok((text[..end].to_string(), &text[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &quoted[i + 1..])),
            '\\' => value.push(chars.next().ok_or("a JAAS value ends in a backslash")?.1),
            c => value.push(c),
        }
    }
    Err("a JAAS value's quote is not closed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> PlainUsers {
        PlainUsers::parse(&format!(
            "{LOGIN_MODULE} required username=\"admin\" password=\"admin-secret\"\n user_admin=\"admin-secret\" user_alice=\"a \\\"quoted\\\" pw\";"
        ))
        .unwrap()
    }

    // Goal: Kafka's JAAS form yields the user_ entries, escapes included, and nothing else.
    #[test]
    fn parses_kafka_jaas_line() {
        let u = users();
        assert_eq!(u.users.len(), 2);
        assert_eq!(u.users["alice"], b"a \"quoted\" pw");
        assert!(!format!("{u:?}").contains("secret"), "Debug never shows passwords");
        for bad in [
            "",
            "user_a=\"x\";",
            &format!("{LOGIN_MODULE} required user_a=\"x\""),
            &format!("{LOGIN_MODULE} always user_a=\"x\";"),
            &format!("{LOGIN_MODULE} required user_a=\"x;"),
            "org.example.Other required user_a=\"x\";",
        ] {
            let err = PlainUsers::parse(bad).err().unwrap_or_else(|| panic!("accepted {bad}"));
            assert!(!err.contains("\"x\""), "errors do not repeat secrets: {err}");
        }
    }

    // Goal: only the right password for a known user, with no other authzid, authenticates.
    #[test]
    fn checks_tokens() {
        let u = users();
        assert!(
            matches!(u.authenticate(b"\0admin\0admin-secret"), Outcome::Authenticated { user, .. } if user == "admin")
        );
        assert!(matches!(u.authenticate(b"admin\0admin\0admin-secret"), Outcome::Authenticated { .. }));
        for (token, reason) in [
            (&b"\0admin\0wrong"[..], "wrong password"),
            (b"\0admin\0admin-secre", "wrong password"),
            (b"\0admin\0admin-secret\0", "wrong password"),
            (b"\0mallory\0admin-secret", "unknown user"),
            (b"alice\0admin\0admin-secret", "authorization id differs from the user name"),
            (b"\0\0pw", "malformed PLAIN token"),
            (b"admin-secret", "malformed PLAIN token"),
        ] {
            match u.authenticate(token) {
                Outcome::Failed { reason: r, .. } => assert_eq!(r, reason, "{token:?}"),
                other => panic!("{token:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab\0", b"ab"));
    }
}
