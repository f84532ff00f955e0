//! Medians and the markdown tables.

use super::wrk::{Errors, Sample};

/// All samples of one row, in repeat order.
pub struct RowResult {
    pub name: &'static str,
    /// The row the ratio columns compare this one against.
    pub vs: Option<&'static str>,
    /// h2load rows: p50 holds the mean, p99 the maximum (h2load has no percentiles).
    pub h2load: bool,
    pub samples: Vec<Sample>,
}

/// A row's medians (each column's median on its own) and summed errors.
pub struct Summary {
    pub name: &'static str,
    pub vs: Option<&'static str>,
    pub h2load: bool,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: Errors,
}

impl RowResult {
    pub fn summary(&self) -> Option<Summary> {
        let pick = |f: fn(&Sample) -> f64| median(self.samples.iter().map(f).collect());
        let mut errors = Errors::default();
        self.samples.iter().for_each(|s| errors.add(&s.errors));
        Some(Summary {
            name: self.name,
            vs: self.vs,
            h2load: self.h2load,
            rps: pick(|s| s.requests_per_sec)?,
            p50_us: pick(|s| s.p50_us)?,
            p99_us: pick(|s| s.p99_us)?,
            errors,
        })
    }
}

/// The median; the mean of the middle two for an even count.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The main table: medians, each row's ratios against the row it is compared
/// with (its `vs`), errors. h2load rows show mean and maximum latency, marked `*`.
pub fn summary_table(rows: &[RowResult]) -> String {
    let summaries: Vec<Summary> = rows.iter().filter_map(RowResult::summary).collect();
    let mut out = String::from(
        "| row | req/s | p50 | p99 | vs | vs (req/s) | vs (p99) | errors |\n|---|---:|---:|---:|---|---:|---:|---|\n",
    );
    for s in &summaries {
        let base = s.vs.and_then(|vs| summaries.iter().find(|b| b.name == vs));
        let (vs, vs_rps, vs_p99) = match base {
            Some(b) => (b.name, ratio(s.rps, b.rps), ratio(s.p99_us, b.p99_us)),
            None => ("–", "–".to_owned(), "–".to_owned()),
        };
        let mark = if s.h2load { "*" } else { "" };
        out += &format!(
            "| {} | {} | {}{mark} | {}{mark} | {vs} | {vs_rps} | {vs_p99} | {} |\n",
            s.name,
            rate(s.rps),
            latency(s.p50_us),
            latency(s.p99_us),
            s.errors.describe()
        );
    }
    if summaries.iter().any(|s| s.h2load) {
        out += "\n\\* h2load reports no percentiles: mean in the p50 column, maximum in the p99 column.\n";
    }
    out
}

/// "direct = 1: nginx 0.96, wasmgate 0.76" — the share of the ceiling each proxy keeps.
pub fn share_of_direct(rows: &[RowResult]) -> Option<String> {
    let summaries: Vec<Summary> = rows.iter().filter_map(RowResult::summary).collect();
    let direct = summaries.iter().find(|s| s.name == "direct")?;
    let parts: Vec<String> = summaries
        .iter()
        .filter(|s| s.name != "direct")
        .map(|s| format!("{} {:.2}", s.name, s.rps / direct.rps))
        .collect();
    (!parts.is_empty()).then(|| format!("share of the direct rate: {}", parts.join(", ")))
}

/// What the plugin rows add to a request in the proxy's time: with the proxy
/// alone on its core and saturated, 1/(req/s) is its time per request, so
/// the difference to the plugin-free row is what the plugins cost, in µs.
/// A ratio hides that: the cheaper the plain proxy, the larger the same
/// plugin cost looks as a share.
pub fn plugin_cost(rows: &[RowResult]) -> Option<String> {
    let summaries: Vec<Summary> = rows.iter().filter_map(RowResult::summary).collect();
    let base = summaries.iter().find(|s| s.name == "wasmgate")?;
    let parts: Vec<String> = summaries
        .iter()
        .filter(|s| s.vs == Some("wasmgate") && s.rps > 0.0 && base.rps > 0.0)
        .map(|s| format!("{} {:+.2} µs", s.name, 1e6 / s.rps - 1e6 / base.rps))
        .collect();
    (!parts.is_empty()).then(|| format!("proxy time a request adds over `wasmgate`: {}", parts.join(", ")))
}

/// Every repeat's numbers, so outliers and drift are visible.
pub fn raw_table(rows: &[RowResult]) -> String {
    let mut out = String::from(
        "| row | repeat | req/s | p50 | p99 | requests | errors |\n|---|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        for (i, s) in row.samples.iter().enumerate() {
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                row.name,
                i + 1,
                rate(s.requests_per_sec),
                latency(s.p50_us),
                latency(s.p99_us),
                s.requests,
                s.errors.describe()
            );
        }
    }
    out
}

fn ratio(value: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}×", value / base)
    } else {
        "–".to_owned()
    }
}

/// Requests per second, rounded, with thousands separators: "77 012".
pub fn rate(rps: f64) -> String {
    let digits = format!("{:.0}", rps.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// Microseconds in the most readable unit: "654 µs", "1.23 ms", "2.10 s".
pub fn latency(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rps: f64, p99: f64) -> Sample {
        Sample { requests_per_sec: rps, p50_us: 100.0, p99_us: p99, requests: 1, errors: Errors::default() }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(rate(77012.4), "77 012");
        assert_eq!(rate(999.0), "999");
        assert_eq!(latency(654.0), "654 µs");
        assert_eq!(latency(1234.0), "1.23 ms");
    }

    #[test]
    fn table_ratios() {
        let rows = [
            RowResult { name: "nginx", vs: None, h2load: false, samples: vec![sample(100.0, 1000.0)] },
            RowResult { name: "wasmgate", vs: Some("nginx"), h2load: false, samples: vec![sample(80.0, 1500.0)] },
        ];
        let table = summary_table(&rows);
        assert!(table.contains("| wasmgate | 80 | 100 µs | 1.50 ms | nginx | 0.80× | 1.50× | 0 |"), "{table}");
        assert!(table.contains("| nginx | 100 | 100 µs | 1.00 ms | – | – | – | 0 |"), "{table}");
    }

    #[test]
    fn plugin_cost_is_the_difference_of_the_inverse_rates() {
        let rows = [
            RowResult { name: "wasmgate", vs: Some("nginx"), h2load: false, samples: vec![sample(100_000.0, 1.0)] },
            RowResult { name: "wasmgate-noop", vs: Some("wasmgate"), h2load: false, samples: vec![sample(80_000.0, 1.0)] },
        ];
        assert_eq!(
            plugin_cost(&rows).as_deref(),
            Some("proxy time a request adds over `wasmgate`: wasmgate-noop +2.50 µs")
        );
        assert_eq!(plugin_cost(&rows[..1]), None);
    }
}
