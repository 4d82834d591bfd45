//! The one logging set-up of every library: the core's tracing events become one line each,
//! handed to the library's sink (the server's error-log service, or stderr where the server has
//! none it can offer every release).

use std::sync::Once;

use okv_core::logging::{LineLayer, Severity};
use tracing_subscriber::layer::SubscriberExt;

static INSTALLED: Once = Once::new();

/// Routes the core's events to `sink`, once per library (a later call changes nothing).
pub fn install(sink: fn(Severity, &str)) {
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(LineLayer::new(sink));
        // Our copy of tracing is private to this library; nothing else can have set it.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}
