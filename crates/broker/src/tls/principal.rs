//! The principal of a TLS client: the subject of its certificate, written
//! as an RFC 2253 distinguished name (`CN=app,OU=eng,O=Example,C=US`, the
//! last RDN of the certificate first, as Kafka writes it), then mapped by
//! `ssl.principal.mapping.rules`.
//!
//! The subject is read with a small DER walker rather than a full X.509
//! parser: rustls has already verified the chain, so only the name is needed.
//! Rules: `DEFAULT` keeps the whole name; `RULE:pattern/replacement/[LU]`
//! applies when `pattern` matches the whole name, replaces it (with `$1`
//! group references) and optionally lower- or upper-cases the result. The
//! first rule that matches wins; a name no rule matches is refused.

use regex_automata::meta::Regex;

/// The certificate's bytes do not hold a readable subject.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("cannot read the certificate subject: {0}")]
pub struct DerError(&'static str);

/// One DER element: its tag, its content and the whole encoding.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    encoded: &'a [u8],
}

/// Reads the next DER element from the front of `input`.
fn next_tlv<'a>(input: &mut &'a [u8]) -> Result<Tlv<'a>, DerError> {
    let data = *input;
    let (&tag, rest) = data.split_first().ok_or(DerError("truncated element"))?;
    let (&first, rest) = rest.split_first().ok_or(DerError("truncated length"))?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(DerError("bad length"));
        }
        let len = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + count)
    };
    let end = header.checked_add(len).filter(|end| *end <= data.len()).ok_or(DerError("element overruns input"))?;
    *input = &data[end..];
    Ok(Tlv { tag, content: &data[header..end], encoded: &data[..end] })
}

fn expect_tlv<'a>(input: &mut &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
    let tlv = next_tlv(input)?;
    if tlv.tag == tag {
        Ok(tlv)
    } else {
        Err(DerError(what))
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The subject of a DER certificate as an RFC 2253 name.
pub fn subject_name(cert_der: &[u8]) -> Result<String, DerError> {
    let mut input = cert_der;
    let cert = expect_tlv(&mut input, SEQUENCE, "certificate is not a sequence")?;
    let mut cert_body = cert.content;
    let tbs = expect_tlv(&mut cert_body, SEQUENCE, "tbsCertificate is not a sequence")?;
    let mut fields = tbs.content;
    let mut field = next_tlv(&mut fields)?;
    if field.tag == 0xa0 {
        // [0] EXPLICIT version; the serial number follows.
        field = next_tlv(&mut fields)?;
    }
    if field.tag != 0x02 {
        return Err(DerError("serial number is not an integer"));
    }
    expect_tlv(&mut fields, SEQUENCE, "signature algorithm is not a sequence")?;
    expect_tlv(&mut fields, SEQUENCE, "issuer is not a sequence")?;
    expect_tlv(&mut fields, SEQUENCE, "validity is not a sequence")?;
    let subject = expect_tlv(&mut fields, SEQUENCE, "subject is not a sequence")?;
    rfc2253(subject.content)
}

/// Writes a Name's RDNs in RFC 2253 order: the last one first.
fn rfc2253(mut rdns: &[u8]) -> Result<String, DerError> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let rdn = expect_tlv(&mut rdns, SET, "relative name is not a set")?;
        let mut avas = rdn.content;
        let mut values = Vec::new();
        while !avas.is_empty() {
            let ava = expect_tlv(&mut avas, SEQUENCE, "attribute is not a sequence")?;
            let mut body = ava.content;
            let oid = expect_tlv(&mut body, OID, "attribute type is not an oid")?;
            let value = next_tlv(&mut body)?;
            values.push(attribute(oid.content, &value)?);
        }
        parts.push(values.join("+"));
    }
    parts.reverse();
    Ok(parts.join(","))
}

/// One `TYPE=value`: a keyword RFC 2253 knows with its escaped string value,
/// otherwise the dotted OID with `#` and the value's DER encoding in hex.
fn attribute(oid: &[u8], value: &Tlv<'_>) -> Result<String, DerError> {
    let dotted = dotted_oid(oid)?;
    let keyword = match dotted.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    match (keyword, string_value(value)) {
        (Some(keyword), Some(text)) => Ok(format!("{keyword}={}", escape(&text))),
        _ => {
            let hex: String = value.encoded.iter().map(|b| format!("{b:02x}")).collect();
            Ok(format!("{dotted}=#{hex}"))
        }
    }
}

/// The text of a directory string, for the string types certificates use.
fn string_value(value: &Tlv<'_>) -> Option<String> {
    match value.tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString.
        0x0c | 0x13 | 0x16 | 0x12 | 0x1a => String::from_utf8(value.content.to_vec()).ok(),
        // TeletexString: read as Latin-1, as most software does.
        0x14 => Some(value.content.iter().map(|b| char::from(*b)).collect()),
        // BMPString: UTF-16 big-endian.
        0x1e if value.content.len() & 1 == 0 => {
            let units: Vec<u16> = value.content.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

fn dotted_oid(oid: &[u8]) -> Result<String, DerError> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        acc = acc.checked_mul(128).ok_or(DerError("oid arc too large"))? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.extend([first, acc - first * 40]);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i + 1 == oid.len() {
            return Err(DerError("truncated oid"));
        }
    }
    if arcs.is_empty() {
        return Err(DerError("empty oid"));
    }
    Ok(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

/// RFC 2253 escaping: `,+"\<>;` anywhere, `#` or a space first, a space last.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How a rule changes the case of its result.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Clone, Debug)]
enum Rule {
    Default,
    Replace { pattern: Regex, replacement: String, case: Case },
}

/// `ssl.principal.mapping.rules`, parsed.
#[derive(Clone, Debug)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl PrincipalMapper {
    /// Parses the rules; the error says which part is wrong.
    pub fn parse(value: &str) -> Result<PrincipalMapper, String> {
        let mut rules = Vec::new();
        let mut rest = value.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after).ok_or("a RULE needs pattern/replacement/")?;
                let (replacement, after) = until_slash(after).ok_or("a RULE needs pattern/replacement/")?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let anchored = format!("^(?:{})$", pattern.replace("\\/", "/"));
                let pattern = Regex::new(&anchored).map_err(|e| format!("bad pattern '{pattern}': {e}"))?;
                rules.push(Rule::Replace { pattern, replacement: replacement.to_string(), case });
                rest = after;
            } else {
                return Err(format!("'{rest}' is neither DEFAULT nor RULE:pattern/replacement/[LU]"));
            }
            rest = rest.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        if rules.is_empty() {
            return Err("no rule given (DEFAULT keeps the whole subject)".into());
        }
        Ok(PrincipalMapper { rules })
    }

    /// The principal name for subject `name`, from the first rule that
    /// matches; `None` when none does.
    pub fn map(&self, name: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(name.to_string()),
            Rule::Replace { pattern, replacement, case } => {
                let mut caps = pattern.create_captures();
                pattern.captures(name, &mut caps);
                if !caps.is_match() {
                    return None;
                }
                let out = expand(replacement, |group| caps.get_group(group).map(|span| &name[span.range()]));
                Some(match case {
                    Case::Keep => out,
                    Case::Lower => out.to_lowercase(),
                    Case::Upper => out.to_uppercase(),
                })
            }
        })
    }
}

/// The text up to the first `/` not escaped as `\/`, and what follows it.
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Expands `$n` group references and `\x` escapes in a replacement.
fn expand<'a>(replacement: &str, group: impl Fn(usize) -> Option<&'a str>) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut index = 0usize;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    index = index.saturating_mul(10).saturating_add(d as usize);
                    chars.next();
                }
                out.push_str(group(index).unwrap_or(""));
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with_subject(dn: rcgen::DistinguishedName) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap();
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_is_written_last_rdn_first_with_escapes() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc.");
        dn.push(rcgen::DnType::OrganizationalUnitName, "eng");
        dn.push(rcgen::DnType::CommonName, "app-1");
        let name = subject_name(&cert_with_subject(dn)).unwrap();
        assert_eq!(name, "CN=app-1,OU=eng,O=Example\\, Inc.,C=US");
    }

    #[test]
    fn unknown_attributes_are_written_as_oid_and_hex() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]), "a@b");
        dn.push(rcgen::DnType::CommonName, "x");
        let name = subject_name(&cert_with_subject(dn)).unwrap();
        assert!(name.starts_with("CN=x,1.2.840.113549.1.9.1=#"), "{name}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[][..], &[0x30], &[0x30, 0x85, 1, 1, 1, 1, 1], &[0x30, 0x03, 0x30, 0x01], &[0x04, 0x00]] {
            assert!(subject_name(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn rules_map_the_subject_first_match_wins() {
        let mapper = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=([a-z]+)-\\d+,O=(.*)$/$1@$2/U,DEFAULT",
        )
        .unwrap();
        assert_eq!(mapper.map("CN=kafka-client,OU=ServiceUsers,O=Example").as_deref(), Some("kafka-client"));
        assert_eq!(mapper.map("CN=app-7,O=Example").as_deref(), Some("APP@EXAMPLE"));
        assert_eq!(mapper.map("CN=other,O=Example").as_deref(), Some("CN=other,O=Example"));
        let lower = PrincipalMapper::parse("RULE:CN=([^,]*).*/$1/L").unwrap();
        assert_eq!(lower.map("CN=Alice,O=X").as_deref(), Some("alice"));
        assert_eq!(lower.map("O=X"), None);
        let slash = PrincipalMapper::parse("RULE:^CN=(.*)$/svc\\/$1/").unwrap();
        assert_eq!(slash.map("CN=a").as_deref(), Some("svc/a"));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in ["", "RULE:x", "RULE:(/y/", "SOMETHING", "DEFAULT,RULE:a/b"] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad}");
        }
    }
}
