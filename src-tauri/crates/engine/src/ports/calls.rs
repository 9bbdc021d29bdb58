//! Call counters: what a run cost, by port and operation.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Which port a call went through (S3, SQS and DynamoDB on AWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Objects,
    Queue,
    State,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Objects => "objects",
            Service::Queue => "queue",
            Service::State => "state",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallCount {
    pub service: Service,
    pub operation: &'static str,
    pub count: u64,
}

/// A snapshot of counters, sorted by service and operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls(BTreeMap<(Service, &'static str), u64>);

impl Calls {
    pub fn get(&self, service: Service, operation: &str) -> u64 {
        self.0
            .iter()
            .find(|((s, o), _)| *s == service && *o == operation)
            .map_or(0, |(_, n)| *n)
    }
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
    pub fn merge(&mut self, other: &Calls) {
        for (k, n) in &other.0 {
            *self.0.entry(*k).or_default() += n;
        }
    }
    /// The calls made since `earlier` (a snapshot of the same counters).
    pub fn since(&self, earlier: &Calls) -> Calls {
        Calls(
            self.0
                .iter()
                .map(|(k, n)| (*k, n.saturating_sub(earlier.0.get(k).copied().unwrap_or(0))))
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }
    pub fn iter(&self) -> impl Iterator<Item = CallCount> + '_ {
        self.0
            .iter()
            .map(|((service, operation), count)| CallCount {
                service: *service,
                operation,
                count: *count,
            })
    }
}

/// Counters an adapter bumps once per request it makes (retries and pages included).
#[derive(Debug, Default)]
pub struct CallCounter(Mutex<BTreeMap<(Service, &'static str), u64>>);

impl CallCounter {
    pub fn add(&self, service: Service, operation: &'static str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((service, operation)).or_default() += 1;
    }
    pub fn snapshot(&self) -> Calls {
        Calls(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

impl serde::Serialize for Calls {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}
