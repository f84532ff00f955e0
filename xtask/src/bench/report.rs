//! Medians and the markdown tables.

use super::wrk::{Errors, Sample};

/// All samples of one row at one concurrency, in repeat order.
pub struct RowResult {
    pub name: &'static str,
    /// The row the ratio columns compare this one against.
    pub vs: Option<&'static str>,
    /// The same proxy without this row's plugins (or scripts): the plugin-cost
    /// line gives the µs this row adds over it.
    pub base: Option<&'static str>,
    /// h2load rows: p50 holds the mean, p99 the maximum (h2load has no percentiles).
    pub h2load: bool,
    pub samples: Vec<Sample>,
}

/// Every row at one concurrency: one section of the report.
pub struct Section {
    pub connections: u32,
    pub rows: Vec<RowResult>,
}

/// A row's medians (each column's median on its own) and summed errors.
pub struct Summary {
    pub name: &'static str,
    pub vs: Option<&'static str>,
    pub base: Option<&'static str>,
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
            base: self.base,
            h2load: self.h2load,
            rps: pick(|s| s.requests_per_sec)?,
            p50_us: pick(|s| s.p50_us)?,
            p99_us: pick(|s| s.p99_us)?,
            errors,
        })
    }
}

fn summaries(rows: &[RowResult]) -> Vec<Summary> {
    rows.iter().filter_map(RowResult::summary).collect()
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

/// One concurrency's table: medians as thousands of requests/s (per proxy
/// core when pinned) and its inverse in µs, latency, each row's ratios against
/// the row it is compared with (its `vs`), errors. h2load rows show mean and
/// maximum latency, marked `*`.
pub fn summary_table(rows: &[RowResult]) -> String {
    let summaries = summaries(rows);
    let mut out = String::from(
        "| row | krps per proxy core | µs per request | p50 | p99 | vs | vs (req/s) | vs (p99) | errors |\n\
         |---|---:|---:|---:|---:|---|---:|---:|---|\n",
    );
    for s in &summaries {
        let base = s.vs.and_then(|vs| summaries.iter().find(|b| b.name == vs));
        let (vs, vs_rps, vs_p99) = match base {
            Some(b) => (b.name, ratio(s.rps, b.rps), ratio(s.p99_us, b.p99_us)),
            None => ("–", "–".to_owned(), "–".to_owned()),
        };
        let mark = if s.h2load { "*" } else { "" };
        out += &format!(
            "| {} | {} | {} | {}{mark} | {}{mark} | {vs} | {vs_rps} | {vs_p99} | {} |\n",
            s.name,
            krps(s.rps),
            per_request(s.rps),
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

/// Every concurrency side by side, one row per line: thousands of requests/s,
/// the ratio against the row's `vs`, and p99 — the table to read first.
pub fn overview_table(sections: &[Section]) -> String {
    let mut out = String::from("| row |");
    let mut rule = String::from("|---|");
    for section in sections {
        out += &format!(" c{0}: krps | c{0}: × vs | c{0}: p99 |", section.connections);
        rule += "---:|---:|---:|";
    }
    out += "\n";
    out += &rule;
    out += "\n";
    let all: Vec<Vec<Summary>> = sections.iter().map(|s| summaries(&s.rows)).collect();
    let names: Vec<&str> = sections.first().map(|s| s.rows.iter().map(|r| r.name).collect()).unwrap_or_default();
    for name in names {
        out += &format!("| {name} |");
        for summaries in &all {
            match summaries.iter().find(|s| s.name == name) {
                Some(s) => {
                    let vs = s.vs.and_then(|vs| summaries.iter().find(|b| b.name == vs));
                    let times = vs.map_or_else(|| "–".to_owned(), |b| ratio(s.rps, b.rps));
                    let mark = if s.h2load { "*" } else { "" };
                    out += &format!(" {} | {times} | {}{mark} |", krps(s.rps), latency(s.p99_us));
                }
                None => out += " – | – | – |",
            }
        }
        out += "\n";
    }
    out
}

/// The row a row's share is taken of: `direct-16k` for the 16 KiB rows,
/// `direct` for the others (the TCP rows carry the same requests).
fn ceiling_of(name: &str) -> &'static str {
    if name.ends_with("-16k") {
        "direct-16k"
    } else {
        "direct"
    }
}

/// "direct = 1: nginx 0.96, wasmgate 0.76" — the share of the ceiling each proxy keeps.
pub fn share_of_direct(rows: &[RowResult]) -> Option<String> {
    let summaries = summaries(rows);
    let parts: Vec<String> = summaries
        .iter()
        .filter(|s| !s.name.starts_with("direct"))
        .filter_map(|s| {
            let ceiling = summaries.iter().find(|c| c.name == ceiling_of(s.name) && c.rps > 0.0)?;
            Some(format!("{} {:.2}", s.name, s.rps / ceiling.rps))
        })
        .collect();
    (!parts.is_empty()).then(|| format!("share of the direct rate: {}", parts.join(", ")))
}

/// What a row adds to a request in the proxy's time over its `base` (the
/// same proxy without the plugins): with the proxy alone on its core and
/// saturated, 1/(req/s) is its time per request, so the difference is what
/// the plugins cost, in µs. Also the base's name.
fn added_us(summaries: &[Summary], s: &Summary) -> Option<(f64, &'static str)> {
    let base = summaries.iter().find(|b| Some(b.name) == s.base)?;
    (s.rps > 0.0 && base.rps > 0.0).then(|| (1e6 / s.rps - 1e6 / base.rps, base.name))
}

/// The µs each plugin row adds over its plain row, grouped by that row:
/// "proxy time a request adds over `wasmgate`: wasmgate-noop +2.50 µs; over
/// `nginx`: nginx-lua +2.90 µs". A ratio would hide it: the cheaper the plain
/// proxy, the larger the same plugin cost looks as a share.
pub fn plugin_cost(rows: &[RowResult]) -> Option<String> {
    let summaries = summaries(rows);
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for s in &summaries {
        let Some((us, base)) = added_us(&summaries, s) else { continue };
        let part = format!("{} {us:+.2} µs", s.name);
        match groups.iter_mut().find(|(b, _)| *b == base) {
            Some((_, parts)) => parts.push(part),
            None => groups.push((base, vec![part])),
        }
    }
    let groups: Vec<String> =
        groups.iter().map(|(base, parts)| format!("over `{base}`: {}", parts.join(", "))).collect();
    (!groups.is_empty()).then(|| format!("proxy time a request adds {}", groups.join("; ")))
}

/// The same middleware steps in two proxies, side by side: "the same steps
/// in each proxy: wasmgate-chain3 +6.70 µs over wasmgate, nginx-lua +2.90 µs
/// over nginx (2.31×)". `None` unless both rows and their bases ran.
pub fn same_steps(rows: &[RowResult], pair: [&str; 2]) -> Option<String> {
    let summaries = summaries(rows);
    let cost = |name: &str| {
        let s = summaries.iter().find(|s| s.name == name)?;
        added_us(&summaries, s).map(|(us, base)| (s.name, us, base))
    };
    let (a, b) = (cost(pair[0])?, cost(pair[1])?);
    let times = if b.1 > 0.0 { format!(" ({:.2}×)", a.1 / b.1) } else { String::new() };
    Some(format!(
        "the same steps in each proxy: {} {:+.2} µs over {}, {} {:+.2} µs over {}{times}",
        a.0, a.1, a.2, b.0, b.1, b.2
    ))
}

/// Every repeat's numbers, so outliers and drift are visible.
pub fn raw_table(sections: &[Section]) -> String {
    let mut out = String::from(
        "| row | connections | repeat | req/s | p50 | p99 | requests | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row_index in 0..sections.first().map_or(0, |s| s.rows.len()) {
        for section in sections {
            let Some(row) = section.rows.get(row_index) else { continue };
            out += &raw_rows(section.connections, row);
        }
    }
    out
}

fn raw_rows(connections: u32, row: &RowResult) -> String {
    let mut out = String::new();
    for (i, s) in row.samples.iter().enumerate() {
        out += &format!(
            "| {} | {connections} | {} | {} | {} | {} | {} | {} |\n",
            row.name,
            i + 1,
            rate(s.requests_per_sec),
            latency(s.p50_us),
            latency(s.p99_us),
            s.requests,
            s.errors.describe()
        );
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

/// Thousands of requests per second, one decimal: "77.0".
pub fn krps(rps: f64) -> String {
    format!("{:.1}", rps.max(0.0) / 1000.0)
}

/// The inverse rate in µs: the proxy's time per request when it is pinned
/// alone on its core and saturated. "–" for a row that completed nothing.
pub fn per_request(rps: f64) -> String {
    if rps > 0.0 {
        format!("{:.2}", 1e6 / rps)
    } else {
        "–".to_owned()
    }
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

    fn row(name: &'static str, vs: Option<&'static str>, base: Option<&'static str>, rps: f64) -> RowResult {
        RowResult { name, vs, base, h2load: false, samples: vec![sample(rps, 1000.0)] }
    }

    #[test]
    fn krps_and_time_per_request() {
        assert_eq!(krps(77_012.4), "77.0");
        assert_eq!(per_request(125_000.0), "8.00");
        assert_eq!(per_request(0.0), "–");
    }

    #[test]
    fn table_ratios() {
        let rows = [
            RowResult { name: "nginx", vs: None, base: None, h2load: false, samples: vec![sample(100_000.0, 1000.0)] },
            RowResult {
                name: "wasmgate",
                vs: Some("nginx"),
                base: None,
                h2load: false,
                samples: vec![sample(80_000.0, 1500.0)],
            },
        ];
        let table = summary_table(&rows);
        assert!(table.contains("| wasmgate | 80.0 | 12.50 | 100 µs | 1.50 ms | nginx | 0.80× | 1.50× | 0 |"), "{table}");
        assert!(table.contains("| nginx | 100.0 | 10.00 | 100 µs | 1.00 ms | – | – | – | 0 |"), "{table}");
    }

    #[test]
    fn plugin_cost_is_the_difference_of_the_inverse_rates() {
        let rows = [
            row("nginx", None, None, 125_000.0),
            row("wasmgate", Some("nginx"), None, 100_000.0),
            row("wasmgate-noop", Some("wasmgate"), Some("wasmgate"), 80_000.0),
            row("nginx-lua", Some("nginx"), Some("nginx"), 100_000.0),
        ];
        assert_eq!(
            plugin_cost(&rows).as_deref(),
            Some("proxy time a request adds over `wasmgate`: wasmgate-noop +2.50 µs; over `nginx`: nginx-lua +2.00 µs")
        );
        assert_eq!(plugin_cost(&rows[..2]), None);
        // Without its base row, a plugin row has no cost to show.
        assert_eq!(plugin_cost(&rows[2..3]), None);
    }

    #[test]
    fn same_steps_in_both_proxies() {
        let rows = [
            row("nginx", None, None, 125_000.0),
            row("wasmgate", Some("nginx"), None, 100_000.0),
            row("wasmgate-chain3", Some("wasmgate"), Some("wasmgate"), 80_000.0),
            row("nginx-lua", Some("nginx"), Some("nginx"), 100_000.0),
        ];
        assert_eq!(
            same_steps(&rows, ["wasmgate-chain3", "nginx-lua"]).as_deref(),
            Some("the same steps in each proxy: wasmgate-chain3 +2.50 µs over wasmgate, nginx-lua +2.00 µs over nginx (1.25×)")
        );
        assert_eq!(same_steps(&rows[..3], ["wasmgate-chain3", "nginx-lua"]), None);
    }

    #[test]
    fn shares_use_the_matching_ceiling() {
        let rows = [
            row("direct", Some("nginx"), None, 200_000.0),
            row("nginx", None, None, 100_000.0),
            row("direct-16k", Some("nginx-16k"), None, 50_000.0),
            row("nginx-16k", None, None, 25_000.0),
            row("wasmgate-16k", Some("nginx-16k"), None, 10_000.0),
        ];
        assert_eq!(
            share_of_direct(&rows).as_deref(),
            Some("share of the direct rate: nginx 0.50, nginx-16k 0.50, wasmgate-16k 0.20")
        );
    }

    #[test]
    fn overview_has_a_column_group_per_concurrency() {
        let section = |connections, wasmgate_rps| Section {
            connections,
            rows: vec![row("nginx", None, None, 100_000.0), row("wasmgate", Some("nginx"), None, wasmgate_rps)],
        };
        let table = overview_table(&[section(32, 90_000.0), section(256, 50_000.0)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| row | c32: krps | c32: × vs | c32: p99 | c256: krps | c256: × vs | c256: p99 |"
        );
        assert_eq!(lines[1], "|---|---:|---:|---:|---:|---:|---:|");
        assert_eq!(lines[2], "| nginx | 100.0 | – | 1.00 ms | 100.0 | – | 1.00 ms |");
        assert_eq!(lines[3], "| wasmgate | 90.0 | 0.90× | 1.00 ms | 50.0 | 0.50× | 1.00 ms |");
    }

    #[test]
    fn raw_table_keeps_a_rows_concurrencies_together() {
        let section = |connections| Section {
            connections,
            rows: vec![row("nginx", None, None, 1.0), row("wasmgate", Some("nginx"), None, 1.0)],
        };
        let table = raw_table(&[section(32), section(256)]);
        let order: Vec<(&str, &str)> = table
            .lines()
            .skip(2)
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                Some((*cells.get(1)?, *cells.get(2)?))
            })
            .collect();
        assert_eq!(order, [("nginx", "32"), ("nginx", "256"), ("wasmgate", "32"), ("wasmgate", "256")]);
    }
}
