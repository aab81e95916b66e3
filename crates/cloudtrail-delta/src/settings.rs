//! Where the tables are.

use cloudtrail_parse::LogKind;

/// The table of each kind's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUris {
    pub cloudtrail: String,
    pub insights: String,
    /// None: aggregated-event objects fail, saying which setting names their table.
    pub aggregated: Option<String>,
}

impl TableUris {
    /// The table of a kind's records, if one is set.
    pub fn of(&self, kind: LogKind) -> Option<&str> {
        match kind {
            LogKind::CloudTrail => Some(&self.cloudtrail),
            LogKind::Insights => Some(&self.insights),
            LogKind::Aggregated => self.aggregated.as_deref(),
        }
    }

    /// Each kind with a table, and its table.
    pub fn all(&self) -> Vec<(LogKind, &str)> {
        [LogKind::CloudTrail, LogKind::Insights, LogKind::Aggregated]
            .into_iter()
            .filter_map(|kind| self.of(kind).map(|uri| (kind, uri)))
            .collect()
    }
}
