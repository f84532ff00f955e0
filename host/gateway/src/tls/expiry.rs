//! When a certificate expires, for `/metrics`: its `notAfter`, read from the
//! DER by walking the few fields before it (rustls and webpki check validity
//! but do not expose the date). Runs at config load only.

/// `notAfter` of a DER X.509 certificate, in Unix seconds; `None` when it
/// cannot be read.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (certificate, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = skip(tbs)?;
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        tbs = skip(tbs)?;
    }
    let (validity, _) = element(tbs, SEQUENCE)?;
    let after_not_before = skip(validity)?;
    let tag = *after_not_before.first()?;
    let (time, _) = element(after_not_before, tag)?;
    time_of(tag, time)
}

const SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT Version`.
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The content of the element `der` starts with, if its tag is `tag`, and what follows it.
fn element(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = der.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let bytes = usize::from(first & 0x7f);
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let length = rest[..bytes].iter().fold(0usize, |length, &b| (length << 8) | usize::from(b));
        (length, &rest[bytes..])
    };
    (rest.len() >= length).then(|| (&rest[..length], &rest[length..]))
}

/// What follows the element `der` starts with.
fn skip(der: &[u8]) -> Option<&[u8]> {
    element(der, *der.first()?).map(|(_, rest)| rest)
}

/// `YYMMDDHHMMSSZ` (UTCTime, years 1950–2049) or `YYYYMMDDHHMMSSZ` (GeneralizedTime).
fn time_of(tag: u8, text: &[u8]) -> Option<i64> {
    let number =
        |digits: &[u8]| digits.iter().try_fold(0i64, |n, &d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')));
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy = number(text.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME => (number(text.get(..4)?)?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 11 || rest[10] != b'Z' {
        return None;
    }
    let field = |at: usize| number(&rest[at..at + 2]);
    let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(time_of(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time_of(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(time_of(GENERALIZED_TIME, b"40960101000000Z"), Some(67_090_118_400));
        assert_eq!(time_of(GENERALIZED_TIME, b"20240229120000Z"), Some(1_709_208_000));
        assert_eq!(time_of(UTC_TIME, b"2402291200Z"), None);
        assert_eq!(time_of(UTC_TIME, b"241301000000Z"), None);
    }

    #[test]
    fn not_a_certificate() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
    }
}
