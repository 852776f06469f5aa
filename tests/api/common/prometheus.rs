//! `/metrics` read as Prometheus reads it: the text parsed by a Prometheus
//! text-format parser, and one series looked up by its family and labels.

use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};

pub type Scrape = MetricsExposition<PrometheusType, PrometheusValue>;

/// The scrape as a Prometheus text-format parser reads it: the whole text
/// must be valid.
pub fn parse(text: &str) -> Scrape {
    openmetrics_parser::prometheus::parse_prometheus(text)
        .unwrap_or_else(|e| panic!("not the Prometheus text format ({e:?}): {text}"))
}

/// The series of family `family` whose labels are exactly `labels`.
pub fn series<'a>(
    scrape: &'a Scrape,
    family: &str,
    labels: &[(&str, &str)],
) -> Option<&'a PrometheusValue> {
    let sample = scrape.families.get(family)?.iter_samples().find(|s| {
        let set = s.get_labelset().unwrap();
        set.iter().count() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
    })?;
    Some(&sample.value)
}

/// A series' value: a counter's or gauge's, or a histogram's count.
pub fn value(scrape: &Scrape, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    match series(scrape, family, labels)? {
        PrometheusValue::Counter(c) => Some(c.value.as_f64()),
        PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => Some(n.as_f64()),
        PrometheusValue::Histogram(h) => h.count.map(|c| c as f64),
        PrometheusValue::Summary(_) => None,
    }
}

/// The help text of family `family`.
pub fn help<'a>(scrape: &'a Scrape, family: &str) -> &'a str {
    &scrape.families[family].help
}
