//! Forwards the core's `tracing` events to a line-oriented sink: mysqld's error log inside the
//! server, stderr in the command-line tool. Debug and trace events are dropped in the server.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Severity as mysqld's plugin log service numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error = 0,
    Warning = 1,
    Information = 2,
}

pub type Sink = fn(Severity, &str);

pub struct LineLayer {
    sink: Sink,
}

impl LineLayer {
    pub fn new(sink: Sink) -> Self {
        LineLayer { sink }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// One error-log entry is one line: a message that spans lines would be split by log readers.
pub fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let severity = match *event.metadata().level() {
            Level::ERROR => Severity::Error,
            Level::WARN => Severity::Warning,
            Level::INFO => Severity::Information,
            _ => return,
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        (self.sink)(severity, &one_line(&message.0));
    }
}
