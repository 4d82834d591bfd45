//! An in-process KMIP 1.1 server with switchable quirks of production key managers that
//! PyKMIP does not have: destroyed objects kept and listed, Locate capped whatever Maximum
//! Items says, filters ignored, newer-version result reasons, tampered Get answers, batches
//! stopped at the first error, Initial Date ranges ignored or with an exclusive end or
//! sub-second dates, KMIP 1.3 Offset Items honoured or ignored, Located Items right or wrong,
//! answers in storage order where an update moves an object, the ID Placeholder set by Locate
//! or not, or refused, names kept unique or not. Objects can be planted directly (two under one
//! name, a standby with other identifiers for the same names). Served by
//! `fault_server::Fault::Kmip`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use okv_core::kmip::tags::{
    self, attr, cryptographic_algorithm, key_format_type, object_type, operation, result_reason,
    result_status, state,
};
use okv_core::kmip::{Ttlv, Value, ttlv};

/// How a Get answer is spoiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// The material is cut to this many bytes (Cryptographic Length adjusted to match).
    Length(usize),
    /// The Cryptographic Length says this many bits, the material is unchanged.
    StatedBits(i32),
    /// Cryptographic Algorithm is this value.
    Algorithm(u32),
    /// The answer names another object.
    OtherUid,
    /// The Object Type is this (possibly newer-version) value.
    ObjectType(u32),
}

/// What Get and Get Attributes without a Unique Identifier (the ID Placeholder) are about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placeholder {
    /// The object Locate (its first identifier), Create or Register set earlier in the same
    /// message, as KMIP 1.1 says.
    #[default]
    Honoured,
    /// Only Create and Register set it, and it outlives the message, as in PyKMIP 0.11: after a
    /// Locate it names nothing, or an object made earlier.
    NotByLocate,
    /// A message with such an item is refused whole: every item fails.
    Refused,
}

/// What the server does with KMIP 1.3's Offset Items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Offset {
    /// A KMIP 1.1 server: Discover Versions offers 1.1 and 1.0, and a Locate with Offset Items
    /// is refused.
    #[default]
    Absent,
    /// Discover Versions offers up to 1.4 and Locate skips Offset Items identifiers (in a
    /// message of version 1.3 or later; refused in an older one).
    Honoured,
    /// Discover Versions offers up to 1.4, and Locate accepts Offset Items and ignores it.
    Ignored,
}

/// How Locate compares Initial Dates with a range of two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DateBounds {
    /// Both ends included, as KMIP says.
    #[default]
    Inclusive,
    /// The end is excluded.
    ExclusiveEnd,
    /// Dates are kept in milliseconds (an object's Initial Date reads the whole second) and
    /// compared with the range's whole seconds, so an object made at 10.4 s is outside 0..=10.
    SubSecond,
}

/// What Locate answers in a message of version 1.3 or later carry as Located Items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LocatedItems {
    #[default]
    Absent,
    /// Every object the Locate matched.
    Right,
    /// The identifiers in this answer (a misreading of the field).
    Wrong,
}

#[derive(Clone, Debug, Default)]
pub struct Quirks {
    /// Destroy keeps the object (state Destroyed, no material) and Locate lists it.
    pub keep_destroyed: bool,
    /// Locate returns at most this many identifiers, whatever Maximum Items says.
    pub locate_cap: Option<usize>,
    /// Locate ignores the State attribute.
    pub ignore_state_filter: bool,
    /// Absent objects are answered with Object Destroyed (KMIP 2.0) instead of Item Not Found.
    pub newer_reasons: bool,
    /// Get answers are spoiled so.
    pub tamper: Option<Tamper>,
    /// Batches stop at the first failed item whatever the client asked.
    pub stop_batch_on_error: bool,
    /// The next request of this operation is carried out and its answer lost (the
    /// connection closes instead).
    pub swallow_once: Option<u32>,
    /// The next message with a Get among its items (alone, or batched behind the object's
    /// attributes as the MySQL keyring reads a key it found) is carried out and its answer
    /// lost: a server that dies between a key's Locate and its Get.
    pub swallow_get_once: bool,
    /// After swallowing, the server goes down (every later request closes the connection).
    pub down_after_swallow: bool,
    /// The server is down: every request closes the connection unanswered.
    pub down: bool,
    /// Identifiers Locate lists that no other operation knows.
    pub ghosts: Vec<String>,
    /// Locate ignores Initial Date attributes.
    pub ignore_initial_date: bool,
    /// What Locate does with Offset Items.
    pub offset: Offset,
    /// Locate lists the oldest object first (the default is newest first, as PyKMIP does).
    pub oldest_first: bool,
    /// Locate lists objects in storage order, not by date (SQL without ORDER BY); an update
    /// (Activate, Revoke, `Change::Touch`) moves the object to the front of it.
    pub storage_order: bool,
    /// How Locate compares Initial Dates with a range.
    pub date_bounds: DateBounds,
    /// Located Items in Locate answers (KMIP 1.3 or later).
    pub located_items: LocatedItems,
    /// New identifiers are UUID-like and each sorts before the ones made earlier (identifiers
    /// not in creation order).
    pub descending_uids: bool,
    /// The clock stands still: new objects all get the same Initial Date and answers the same
    /// Time Stamp (otherwise it moves one second on after each object made).
    pub frozen_clock: bool,
    /// Activate requests wait until `tick` (a slow Activate, so that a test can line up what
    /// another client does meanwhile).
    pub hold_activate: bool,
    /// The next this many Get Attributes asking for the State alone fail (General Failure).
    pub fail_state_checks: usize,
    /// Every message is answered this long after it arrived (a slow server that still answers
    /// within the request timeout).
    pub slow: Option<Duration>,
    /// What the ID Placeholder is.
    pub placeholder: Placeholder,
    /// Creates wait until this many are waiting (or until `tick`), so that that many clients
    /// racing to make one name each look for it before any of them has made it.
    pub hold_creates: usize,
    /// Create and Register refuse a Name that an object not destroyed already carries
    /// (Object Already Exists), as key managers that keep names unique do.
    pub unique_names: bool,
}

#[derive(Clone, Debug)]
pub struct Object {
    pub uid: String,
    pub object_type: u32,
    pub names: Vec<String>,
    pub state: u32,
    pub algorithm: Option<u32>,
    pub length_bits: Option<i32>,
    pub material: Vec<u8>,
    pub initial_date: i64,
}

impl Object {
    /// An Active AES key.
    pub fn aes(uid: &str, name: &str, material: Vec<u8>, initial_date: i64) -> Object {
        Object {
            uid: uid.into(),
            object_type: object_type::SYMMETRIC_KEY,
            names: vec![name.into()],
            state: state::ACTIVE,
            algorithm: Some(cryptographic_algorithm::AES),
            length_bits: Some(i32::try_from(material.len() * 8).unwrap()),
            material,
            initial_date,
        }
    }
}

/// A change made to the server's objects just before a given Locate is answered, as another
/// client would make it between two pages of a listing.
#[derive(Clone, Debug)]
pub enum Change {
    Plant(Object),
    Remove(String),
    /// Another client updates the object (with `storage_order`, it moves to the front).
    Touch(String),
}

pub struct QuirkyKmip {
    pub quirks: Mutex<Quirks>,
    /// (number of Locates answered before it, change): applied when that Locate arrives.
    pub between_locates: Mutex<Vec<(usize, Change)>>,
    /// (number of Locates with Offset Items above 0 answered before it, change): the same for
    /// the pages of a paged listing, wherever a product's own Locates come before them.
    pub between_pages: Mutex<Vec<(usize, Change)>>,
    /// Locates with Offset Items above 0 answered.
    pub pages: AtomicUsize,
    objects: Mutex<Vec<Object>>,
    next_uid: AtomicUsize,
    uid_prefix: String,
    /// Initial Date given to new objects.
    pub clock: Mutex<i64>,
    /// Messages and Locate items served.
    pub messages: AtomicUsize,
    pub locates: AtomicUsize,
    pub gets: AtomicUsize,
    /// Get and Get Attributes items without a Unique Identifier received.
    pub placeholder_items: AtomicUsize,
    /// The ID Placeholder.
    placeholder: Mutex<Option<String>>,
    /// (operation, Unique Identifier) of every batch item that named an object, in order.
    pub requested: Mutex<Vec<(u32, String)>>,
    /// Creates waiting for `hold_creates`.
    creates_waiting: AtomicUsize,
    /// Notified after every message served.
    served: Condvar,
    /// Notified when held Activates may go on.
    released: Condvar,
}

fn attributes(parent: &Ttlv) -> impl Iterator<Item = (&str, &Ttlv)> {
    parent.find_all(tags::ATTRIBUTE).filter_map(|a| {
        Some((
            a.find(tags::ATTRIBUTE_NAME)?.as_text()?,
            a.find(tags::ATTRIBUTE_VALUE)?,
        ))
    })
}

fn attribute(name: &str, value: Value) -> Ttlv {
    Ttlv::structure(
        tags::ATTRIBUTE,
        vec![
            Ttlv::text(tags::ATTRIBUTE_NAME, name),
            Ttlv::new(tags::ATTRIBUTE_VALUE, value),
        ],
    )
}

type Answer = Result<Vec<Ttlv>, (u32, &'static str)>;

/// A quirky server with identifiers starting `uid_prefix`, served over mutual TLS on
/// 127.0.0.1 with the PyKMIP lab's server certificate (so the lab's client identity talks to it).
pub fn serve(
    uid_prefix: &str,
    quirks: Quirks,
) -> (std::sync::Arc<QuirkyKmip>, super::fault_server::FaultServer) {
    let certs = &super::pykmip::lab().certs;
    let kmip = std::sync::Arc::new(QuirkyKmip::new(uid_prefix));
    kmip.set(quirks);
    let fault = super::fault_server::FaultServer::start(super::fault_server::Fault::Kmip {
        tls: super::fixtures::rustls_server_config(
            &certs.join("server.crt"),
            &certs.join("server.key"),
            &certs.join("ca.crt"),
        ),
        server: kmip.clone(),
    });
    (kmip, fault)
}

/// As `serve`, with the test binary's own PKI (`fixtures::pki`), so that no PyKMIP is needed:
/// a configuration directory of `fixtures::pki().layout()` talks to it.
pub fn serve_own_pki(
    uid_prefix: &str,
    quirks: Quirks,
) -> (std::sync::Arc<QuirkyKmip>, super::fault_server::FaultServer) {
    let pki = super::fixtures::pki();
    let kmip = std::sync::Arc::new(QuirkyKmip::new(uid_prefix));
    kmip.set(quirks);
    let fault = super::fault_server::FaultServer::start(super::fault_server::Fault::Kmip {
        tls: super::fixtures::rustls_server_config(&pki.server_cert, &pki.server_key, &pki.ca_cert),
        server: kmip.clone(),
    });
    (kmip, fault)
}

impl QuirkyKmip {
    /// A server whose identifiers start with `uid_prefix`.
    pub fn new(uid_prefix: &str) -> QuirkyKmip {
        QuirkyKmip {
            quirks: Mutex::new(Quirks::default()),
            between_locates: Mutex::new(Vec::new()),
            between_pages: Mutex::new(Vec::new()),
            pages: AtomicUsize::new(0),
            objects: Mutex::new(Vec::new()),
            next_uid: AtomicUsize::new(1),
            uid_prefix: uid_prefix.into(),
            clock: Mutex::new(1_700_000_000),
            messages: AtomicUsize::new(0),
            locates: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
            placeholder_items: AtomicUsize::new(0),
            placeholder: Mutex::new(None),
            requested: Mutex::new(Vec::new()),
            creates_waiting: AtomicUsize::new(0),
            served: Condvar::new(),
            released: Condvar::new(),
        }
    }

    /// Waits (at most `within`) until `done` holds for the objects; false if it never did.
    pub fn wait_until(&self, within: Duration, done: impl Fn(&[Object]) -> bool) -> bool {
        let until = Instant::now() + within;
        let mut objects = self.objects.lock().unwrap();
        loop {
            if done(&objects) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            objects = self.served.wait_timeout(objects, left).unwrap().0;
        }
    }

    /// Moves the clock on by `seconds`, lets it run again and releases held Activates.
    pub fn tick(&self, seconds: i64) {
        {
            let mut quirks = self.quirks.lock().unwrap();
            quirks.frozen_clock = false;
            quirks.hold_activate = false;
            quirks.hold_creates = 0;
            *self.clock.lock().unwrap() += seconds;
        }
        self.released.notify_all();
        self.served.notify_all();
    }

    pub fn set(&self, quirks: Quirks) {
        *self.quirks.lock().unwrap() = quirks;
    }

    pub fn plant(&self, object: Object) {
        self.objects.lock().unwrap().push(object);
    }

    /// Changes the object `uid` as `change` says (an administrator's doing on the server).
    pub fn edit(&self, uid: &str, change: impl FnOnce(&mut Object)) {
        let mut objects = self.objects.lock().unwrap();
        let object = objects
            .iter_mut()
            .find(|o| o.uid == uid)
            .expect("no such object");
        change(object);
    }

    /// Removes the object `uid` (destroyed, and forgotten by the server).
    pub fn remove(&self, uid: &str) {
        self.objects.lock().unwrap().retain(|o| o.uid != uid);
    }

    pub fn objects(&self) -> Vec<Object> {
        self.objects.lock().unwrap().clone()
    }

    /// Whether any request named the object `uid`.
    pub fn asked_about(&self, uid: &str) -> bool {
        self.requested.lock().unwrap().iter().any(|(_, u)| u == uid)
    }

    /// Objects carrying `name`, in any state.
    pub fn named(&self, name: &str) -> Vec<Object> {
        self.objects()
            .into_iter()
            .filter(|o| o.names.iter().any(|n| n == name))
            .collect()
    }

    fn find(&self, wanted: impl Fn(&Object) -> bool) -> Option<Object> {
        self.objects
            .lock()
            .unwrap()
            .iter()
            .find(|o| wanted(o))
            .cloned()
    }

    pub fn fresh_uid(&self) -> String {
        let n = self.next_uid.fetch_add(1, Ordering::SeqCst);
        if self.quirks.lock().unwrap().descending_uids {
            return format!("{:08x}-0c1e-4d2b-9a7e-{n:012x}", u32::MAX as usize - n);
        }
        format!("{}{}", self.uid_prefix, n)
    }

    fn absent(&self) -> (u32, &'static str) {
        if self.quirks.lock().unwrap().newer_reasons {
            (result_reason::OBJECT_DESTROYED, "Object destroyed")
        } else {
            (result_reason::ITEM_NOT_FOUND, "Could not locate object")
        }
    }

    /// Answers one request message with one response message; empty means "close the
    /// connection without an answer".
    pub fn handle(&self, request: &[u8]) -> Vec<u8> {
        let slow = self.quirks.lock().unwrap().slow;
        if let Some(delay) = slow {
            std::thread::sleep(delay);
        }
        let answer = self.serve(request);
        // Under the objects' lock, so that a waiter cannot miss the change.
        drop(self.objects.lock().unwrap());
        self.served.notify_all();
        answer
    }

    fn serve(&self, request: &[u8]) -> Vec<u8> {
        self.messages.fetch_add(1, Ordering::SeqCst);
        let Ok(msg) = ttlv::decode(request) else {
            return Vec::new();
        };
        let header = msg.find(tags::REQUEST_HEADER);
        let version = header
            .and_then(|h| h.find(tags::PROTOCOL_VERSION))
            .map(|v| {
                (
                    v.find(tags::PROTOCOL_VERSION_MAJOR)
                        .and_then(Ttlv::as_int)
                        .unwrap_or(0),
                    v.find(tags::PROTOCOL_VERSION_MINOR)
                        .and_then(Ttlv::as_int)
                        .unwrap_or(0),
                )
            })
            .unwrap_or((1, 1));
        let keep_going = header
            .and_then(|h| h.find(tags::BATCH_ERROR_CONTINUATION_OPTION))
            .and_then(Ttlv::as_enum)
            == Some(tags::batch_error_continuation::CONTINUE)
            && !self.quirks.lock().unwrap().stop_batch_on_error;
        let first_op = msg
            .find(tags::BATCH_ITEM)
            .and_then(|i| i.find(tags::OPERATION))
            .and_then(Ttlv::as_enum);
        let swallow = {
            let mut quirks = self.quirks.lock().unwrap();
            if quirks.down {
                return Vec::new();
            }
            let has_get = msg
                .find_all(tags::BATCH_ITEM)
                .any(|i| i.find(tags::OPERATION).and_then(Ttlv::as_enum) == Some(operation::GET));
            let get_hit = quirks.swallow_get_once && has_get;
            let hit = (first_op.is_some() && quirks.swallow_once == first_op) || get_hit;
            if hit {
                quirks.swallow_once = None;
                quirks.swallow_get_once = false;
                quirks.down = quirks.down_after_swallow;
            }
            hit
        };
        let placeholder = self.quirks.lock().unwrap().placeholder;
        let empty = Ttlv::structure(tags::REQUEST_PAYLOAD, Vec::new());
        let takes_placeholder = |item: &Ttlv| {
            let op = item.find(tags::OPERATION).and_then(Ttlv::as_enum);
            matches!(op, Some(operation::GET | operation::GET_ATTRIBUTES))
                && item
                    .find(tags::REQUEST_PAYLOAD)
                    .unwrap_or(&empty)
                    .find(tags::UNIQUE_IDENTIFIER)
                    .is_none()
        };
        let refused = placeholder == Placeholder::Refused
            && msg.find_all(tags::BATCH_ITEM).any(takes_placeholder);
        if placeholder != Placeholder::NotByLocate {
            *self.placeholder.lock().unwrap() = None;
        }
        let mut items = Vec::new();
        for item in msg.find_all(tags::BATCH_ITEM) {
            let op = item
                .find(tags::OPERATION)
                .and_then(Ttlv::as_enum)
                .unwrap_or(0);
            if takes_placeholder(item) {
                self.placeholder_items.fetch_add(1, Ordering::SeqCst);
            }
            let payload = item.find(tags::REQUEST_PAYLOAD).unwrap_or(&empty);
            let uid = Self::uid_of(payload);
            if !uid.is_empty() {
                self.requested.lock().unwrap().push((op, uid));
            }
            let answer = if refused {
                Err((
                    result_reason::INVALID_MESSAGE,
                    "a Unique Identifier is required",
                ))
            } else {
                self.operation(op, payload, version)
            };
            let failed = answer.is_err();
            let mut out = vec![Ttlv::enumeration(tags::OPERATION, op)];
            if let Some(id) = item.find(tags::UNIQUE_BATCH_ITEM_ID) {
                out.push(id.clone());
            }
            match answer {
                Ok(payload) => {
                    out.push(Ttlv::enumeration(
                        tags::RESULT_STATUS,
                        result_status::SUCCESS,
                    ));
                    out.push(Ttlv::structure(tags::RESPONSE_PAYLOAD, payload));
                }
                Err((reason, message)) => {
                    out.push(Ttlv::enumeration(
                        tags::RESULT_STATUS,
                        result_status::OPERATION_FAILED,
                    ));
                    out.push(Ttlv::enumeration(tags::RESULT_REASON, reason));
                    out.push(Ttlv::text(tags::RESULT_MESSAGE, message));
                }
            }
            items.push(Ttlv::structure(tags::BATCH_ITEM, out));
            if failed && !keep_going {
                break;
            }
        }
        let mut children = vec![Ttlv::structure(
            tags::RESPONSE_HEADER,
            vec![
                Ttlv::structure(
                    tags::PROTOCOL_VERSION,
                    vec![
                        Ttlv::integer(tags::PROTOCOL_VERSION_MAJOR, 1),
                        Ttlv::integer(tags::PROTOCOL_VERSION_MINOR, 1),
                    ],
                ),
                Ttlv::date_time(tags::TIME_STAMP, *self.clock.lock().unwrap()),
                Ttlv::integer(tags::BATCH_COUNT, i32::try_from(items.len()).unwrap()),
            ],
        )];
        children.extend(items);
        if swallow {
            // Carried out, never answered: the caller closes the connection.
            return Vec::new();
        }
        Ttlv::structure(tags::RESPONSE_MESSAGE, children).encode()
    }

    fn uid_of(payload: &Ttlv) -> String {
        payload
            .find(tags::UNIQUE_IDENTIFIER)
            .and_then(Ttlv::as_text)
            .unwrap_or_default()
            .to_string()
    }

    /// The request's Unique Identifier, or else the ID Placeholder ("" when unset).
    fn uid_or_placeholder(&self, payload: &Ttlv) -> String {
        match payload.find(tags::UNIQUE_IDENTIFIER) {
            Some(_) => Self::uid_of(payload),
            None => self.placeholder.lock().unwrap().clone().unwrap_or_default(),
        }
    }

    fn operation(&self, op: u32, payload: &Ttlv, version: (i32, i32)) -> Answer {
        match op {
            operation::CREATE | operation::REGISTER => {
                let mut quirks = self.quirks.lock().unwrap();
                if quirks.hold_creates > 0 {
                    let waiting = self.creates_waiting.fetch_add(1, Ordering::SeqCst) + 1;
                    if waiting >= quirks.hold_creates {
                        quirks.hold_creates = 0;
                        self.creates_waiting.store(0, Ordering::SeqCst);
                        self.released.notify_all();
                    }
                    while quirks.hold_creates > 0 {
                        quirks = self.released.wait(quirks).unwrap();
                    }
                }
                drop(quirks);
                self.make(op, payload)
            }
            operation::ACTIVATE => {
                let mut quirks = self.quirks.lock().unwrap();
                while quirks.hold_activate {
                    quirks = self.released.wait(quirks).unwrap();
                }
                drop(quirks);
                self.activate(payload)
            }
            operation::REVOKE => self.transition(payload, |o| {
                o.state = state::DEACTIVATED;
                Ok(())
            }),
            operation::DESTROY => self.destroy(payload),
            operation::GET => self.get(payload),
            operation::GET_ATTRIBUTES => self.get_attributes(payload),
            operation::LOCATE => self.locate(payload, version),
            operation::DISCOVER_VERSIONS => Ok(self.discover_versions()),
            operation::QUERY => Ok([
                operation::CREATE,
                operation::REGISTER,
                operation::LOCATE,
                operation::GET,
                operation::GET_ATTRIBUTES,
                operation::ACTIVATE,
                operation::REVOKE,
                operation::DESTROY,
                operation::QUERY,
                operation::DISCOVER_VERSIONS,
            ]
            .into_iter()
            .map(|op| Ttlv::enumeration(tags::OPERATION, op))
            .chain([
                Ttlv::enumeration(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                Ttlv::enumeration(tags::OBJECT_TYPE, object_type::SECRET_DATA),
                Ttlv::text(tags::VENDOR_IDENTIFICATION, "quirky test server"),
            ])
            .collect()),
            _ => Err((result_reason::OPERATION_NOT_SUPPORTED, "not supported")),
        }
    }

    fn activate(&self, payload: &Ttlv) -> Answer {
        self.transition(payload, |o| {
            (o.state == state::PRE_ACTIVE)
                .then(|| o.state = state::ACTIVE)
                .ok_or((result_reason::PERMISSION_DENIED, "Object is not pre-active"))
        })
    }

    fn make(&self, op: u32, payload: &Ttlv) -> Answer {
        let kind = payload
            .find(tags::OBJECT_TYPE)
            .and_then(Ttlv::as_enum)
            .unwrap_or(0);
        let template = payload.find(tags::TEMPLATE_ATTRIBUTE);
        let mut names = Vec::new();
        let mut algorithm = None;
        let mut length_bits = None;
        for (name, value) in template.into_iter().flat_map(attributes) {
            match name {
                attr::NAME => names.extend(
                    value
                        .find(tags::NAME_VALUE)
                        .and_then(Ttlv::as_text)
                        .map(str::to_owned),
                ),
                attr::CRYPTOGRAPHIC_ALGORITHM => algorithm = value.as_enum(),
                attr::CRYPTOGRAPHIC_LENGTH => length_bits = value.as_int(),
                _ => {}
            }
        }
        let material = if op == operation::CREATE {
            let len = usize::try_from(length_bits.unwrap_or(256) / 8).unwrap_or(32);
            // Different for every object, so that a test sees whose bytes it got.
            let seed = self.next_uid.load(Ordering::SeqCst);
            (0..len).map(|i| (i * 7 + seed) as u8).collect()
        } else {
            let object = payload
                .children()
                .iter()
                .find(|c| c.find(tags::KEY_BLOCK).is_some())
                .ok_or((result_reason::INVALID_MESSAGE, "no object"))?;
            let block = object.find(tags::KEY_BLOCK).unwrap();
            algorithm = algorithm.or(block
                .find(tags::CRYPTOGRAPHIC_ALGORITHM)
                .and_then(Ttlv::as_enum));
            length_bits = length_bits.or(block
                .find(tags::CRYPTOGRAPHIC_LENGTH)
                .and_then(Ttlv::as_int));
            block
                .find(tags::KEY_VALUE)
                .and_then(|v| v.find(tags::KEY_MATERIAL))
                .and_then(Ttlv::as_bytes)
                .ok_or((result_reason::INVALID_MESSAGE, "no key material"))?
                .to_vec()
        };
        let unique = self.quirks.lock().unwrap().unique_names;
        // Held from the check to the insert, so that two Creates cannot both pass the check.
        let mut objects = self.objects.lock().unwrap();
        if unique
            && objects
                .iter()
                .any(|o| !is_destroyed(o) && o.names.iter().any(|n| names.contains(n)))
        {
            return Err((result_reason::OBJECT_ALREADY_EXISTS, "Name already in use"));
        }
        let uid = self.fresh_uid();
        let initial_date = {
            let frozen = self.quirks.lock().unwrap().frozen_clock;
            let mut clock = self.clock.lock().unwrap();
            let now = *clock;
            if !frozen {
                // One object per second: later answers are a second past its Initial Date.
                *clock += 1;
            }
            now
        };
        objects.push(Object {
            uid: uid.clone(),
            object_type: kind,
            names,
            state: state::PRE_ACTIVE,
            algorithm,
            length_bits,
            material,
            initial_date,
        });
        drop(objects);
        *self.placeholder.lock().unwrap() = Some(uid.clone());
        let mut out = Vec::new();
        if op == operation::CREATE {
            out.push(Ttlv::enumeration(tags::OBJECT_TYPE, kind));
        }
        out.push(Ttlv::text(tags::UNIQUE_IDENTIFIER, uid));
        Ok(out)
    }

    fn transition(
        &self,
        payload: &Ttlv,
        change: impl FnOnce(&mut Object) -> Result<(), (u32, &'static str)>,
    ) -> Answer {
        let uid = Self::uid_of(payload);
        let moves = self.quirks.lock().unwrap().storage_order;
        let mut objects = self.objects.lock().unwrap();
        let at = objects
            .iter()
            .position(|o| o.uid == uid && !is_destroyed(o))
            .ok_or_else(|| self.absent())?;
        change(&mut objects[at])?;
        if moves {
            let object = objects.remove(at);
            objects.insert(0, object);
        }
        Ok(vec![Ttlv::text(tags::UNIQUE_IDENTIFIER, uid)])
    }

    fn destroy(&self, payload: &Ttlv) -> Answer {
        let keep = self.quirks.lock().unwrap().keep_destroyed;
        let uid = Self::uid_of(payload);
        let mut objects = self.objects.lock().unwrap();
        let at = objects
            .iter()
            .position(|o| o.uid == uid && !is_destroyed(o))
            .ok_or_else(|| self.absent())?;
        if objects[at].state == state::ACTIVE {
            return Err((
                result_reason::PERMISSION_DENIED,
                "Object is active and cannot be destroyed.",
            ));
        }
        if keep {
            objects[at].state = state::DESTROYED;
            objects[at].material.clear();
        } else {
            objects.remove(at);
        }
        Ok(vec![Ttlv::text(tags::UNIQUE_IDENTIFIER, uid)])
    }

    fn get(&self, payload: &Ttlv) -> Answer {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let uid = self.uid_or_placeholder(payload);
        let object = self
            .find(|o| o.uid == uid && !is_destroyed(o))
            .ok_or_else(|| self.absent())?;
        let (mut kind, mut algorithm, mut bits, mut material, mut answered_uid) = (
            object.object_type,
            object.algorithm,
            object.length_bits,
            object.material.clone(),
            uid.clone(),
        );
        match self.quirks.lock().unwrap().tamper {
            Some(Tamper::Length(n)) => {
                material.truncate(n);
                bits = Some(i32::try_from(n * 8).unwrap());
            }
            Some(Tamper::StatedBits(b)) => bits = Some(b),
            Some(Tamper::Algorithm(a)) => algorithm = Some(a),
            Some(Tamper::OtherUid) => answered_uid = format!("{uid}-other"),
            Some(Tamper::ObjectType(t)) => kind = t,
            None => {}
        }
        let symmetric = object.object_type == object_type::SYMMETRIC_KEY;
        let mut block = vec![
            Ttlv::enumeration(
                tags::KEY_FORMAT_TYPE,
                if symmetric {
                    key_format_type::RAW
                } else {
                    key_format_type::OPAQUE
                },
            ),
            Ttlv::structure(
                tags::KEY_VALUE,
                vec![Ttlv::bytes(tags::KEY_MATERIAL, material)],
            ),
        ];
        if let Some(a) = algorithm {
            block.push(Ttlv::enumeration(tags::CRYPTOGRAPHIC_ALGORITHM, a));
        }
        if let Some(b) = bits {
            block.push(Ttlv::integer(tags::CRYPTOGRAPHIC_LENGTH, b));
        }
        let block = Ttlv::structure(tags::KEY_BLOCK, block);
        let body = if symmetric {
            Ttlv::structure(tags::SYMMETRIC_KEY, vec![block])
        } else {
            Ttlv::structure(
                tags::SECRET_DATA,
                vec![Ttlv::enumeration(tags::SECRET_DATA_TYPE, 1), block],
            )
        };
        Ok(vec![
            Ttlv::enumeration(tags::OBJECT_TYPE, kind),
            Ttlv::text(tags::UNIQUE_IDENTIFIER, answered_uid),
            body,
        ])
    }

    fn get_attributes(&self, payload: &Ttlv) -> Answer {
        let uid = self.uid_or_placeholder(payload);
        let object = self.find(|o| o.uid == uid).ok_or_else(|| self.absent())?;
        let wanted: Vec<&str> = payload
            .find_all(tags::ATTRIBUTE_NAME)
            .filter_map(Ttlv::as_text)
            .collect();
        if wanted == [attr::STATE] {
            let mut quirks = self.quirks.lock().unwrap();
            if quirks.fail_state_checks > 0 {
                quirks.fail_state_checks -= 1;
                return Err((result_reason::GENERAL_FAILURE, "state check failed"));
            }
        }
        let mut out = vec![Ttlv::text(tags::UNIQUE_IDENTIFIER, uid)];
        let wants = |n: &str| wanted.is_empty() || wanted.contains(&n);
        if wants(attr::NAME) {
            for name in &object.names {
                out.push(attribute(
                    attr::NAME,
                    Value::Structure(vec![
                        Ttlv::text(tags::NAME_VALUE, name.clone()),
                        Ttlv::enumeration(tags::NAME_TYPE, 1),
                    ]),
                ));
            }
        }
        if wants(attr::STATE) {
            out.push(attribute(attr::STATE, Value::Enumeration(object.state)));
        }
        if wants(attr::OBJECT_TYPE) {
            out.push(attribute(
                attr::OBJECT_TYPE,
                Value::Enumeration(object.object_type),
            ));
        }
        if wants(attr::INITIAL_DATE) {
            out.push(attribute(
                attr::INITIAL_DATE,
                Value::DateTime(object.initial_date),
            ));
        }
        if let (true, Some(b)) = (wants(attr::CRYPTOGRAPHIC_LENGTH), object.length_bits) {
            out.push(attribute(attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(b)));
        }
        if let (true, Some(a)) = (wants(attr::CRYPTOGRAPHIC_ALGORITHM), object.algorithm) {
            out.push(attribute(
                attr::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(a),
            ));
        }
        Ok(out)
    }

    fn discover_versions(&self) -> Vec<Ttlv> {
        let offered: &[(i32, i32)] = match self.quirks.lock().unwrap().offset {
            Offset::Absent => &[(1, 1), (1, 0)],
            Offset::Honoured | Offset::Ignored => &[(1, 4), (1, 3), (1, 2), (1, 1), (1, 0)],
        };
        offered
            .iter()
            .map(|&(major, minor)| {
                Ttlv::structure(
                    tags::PROTOCOL_VERSION,
                    vec![
                        Ttlv::integer(tags::PROTOCOL_VERSION_MAJOR, major),
                        Ttlv::integer(tags::PROTOCOL_VERSION_MINOR, minor),
                    ],
                )
            })
            .collect()
    }

    fn apply(&self, pending: &Mutex<Vec<(usize, Change)>>, now: usize) {
        let due: Vec<Change> = {
            let mut pending = pending.lock().unwrap();
            let (due, later) = pending.drain(..).partition(|(at, _)| *at == now);
            *pending = later;
            due.into_iter().map(|(_, change)| change).collect()
        };
        for change in due {
            match change {
                Change::Plant(object) => self.plant(object),
                Change::Remove(uid) => self.objects.lock().unwrap().retain(|o| o.uid != uid),
                Change::Touch(uid) => {
                    let mut objects = self.objects.lock().unwrap();
                    let at = objects
                        .iter()
                        .position(|o| o.uid == uid)
                        .expect("no such object");
                    let object = objects.remove(at);
                    objects.insert(0, object);
                }
            }
        }
    }

    fn locate(&self, payload: &Ttlv, version: (i32, i32)) -> Answer {
        let before = self.locates.fetch_add(1, Ordering::SeqCst);
        self.apply(&self.between_locates, before);
        let maximum = payload
            .find(tags::MAXIMUM_ITEMS)
            .and_then(Ttlv::as_int)
            .and_then(|m| usize::try_from(m).ok());
        let offset = payload
            .find(tags::OFFSET_ITEMS)
            .and_then(Ttlv::as_int)
            .map(|o| usize::try_from(o).unwrap_or(0));
        if offset.is_some_and(|o| o > 0) {
            let page = self.pages.fetch_add(1, Ordering::SeqCst);
            self.apply(&self.between_pages, page);
        }
        let quirks = self.quirks.lock().unwrap().clone();
        if offset.is_some() && (quirks.offset == Offset::Absent || version < (1, 3)) {
            return Err((
                result_reason::INVALID_FIELD,
                "Offset Items is not a KMIP 1.1 field",
            ));
        }
        let skip = match quirks.offset {
            Offset::Honoured => offset.unwrap_or(0),
            Offset::Absent | Offset::Ignored => 0,
        };
        let mut dates = Vec::new();
        let objects = self.objects.lock().unwrap();
        let mut matches: Vec<&Object> = objects
            .iter()
            .filter(|o| quirks.keep_destroyed || !is_destroyed(o))
            .collect();
        for (name, value) in attributes(payload) {
            match name {
                attr::NAME => {
                    let wanted = value.find(tags::NAME_VALUE).and_then(Ttlv::as_text);
                    matches.retain(|o| wanted.is_some_and(|w| o.names.iter().any(|n| n == w)));
                }
                attr::OBJECT_TYPE => matches.retain(|o| Some(o.object_type) == value.as_enum()),
                attr::STATE if !quirks.ignore_state_filter => {
                    matches.retain(|o| Some(o.state) == value.as_enum())
                }
                attr::INITIAL_DATE if !quirks.ignore_initial_date => {
                    dates.extend(value.as_date_time())
                }
                _ => {}
            }
        }
        match dates.as_slice() {
            [] => {}
            [at] => matches.retain(|o| o.initial_date == *at),
            [a, b] => {
                let (from, to) = ((*a).min(*b), (*a).max(*b));
                matches.retain(|o| match quirks.date_bounds {
                    DateBounds::Inclusive => (from..=to).contains(&o.initial_date),
                    DateBounds::ExclusiveEnd => (from..to).contains(&o.initial_date),
                    DateBounds::SubSecond => {
                        (from * 1000..=to * 1000).contains(&(o.initial_date * 1000 + millis(o)))
                    }
                });
            }
            _ => return Err((result_reason::INVALID_FIELD, "too many Initial Dates")),
        }
        if quirks.storage_order {
            // As stored.
        } else if quirks.oldest_first {
            matches.sort_by_key(|o| o.initial_date);
        } else {
            matches.sort_by_key(|o| std::cmp::Reverse(o.initial_date));
        }
        let matched = quirks.ghosts.len() + matches.len();
        let limit = match quirks.locate_cap {
            Some(cap) => cap,
            None => maximum.unwrap_or(usize::MAX),
        };
        let uids = quirks
            .ghosts
            .iter()
            .cloned()
            .chain(matches.into_iter().map(|o| o.uid.clone()));
        let found: Vec<String> = uids.skip(skip).take(limit).collect();
        if quirks.placeholder == Placeholder::Honoured {
            *self.placeholder.lock().unwrap() = found.first().cloned();
        }
        let counted = match quirks.located_items {
            _ if version < (1, 3) => None,
            LocatedItems::Absent => None,
            LocatedItems::Right => Some(matched),
            LocatedItems::Wrong => Some(found.len()),
        };
        Ok(counted
            .map(|n| Ttlv::integer(tags::LOCATED_ITEMS, i32::try_from(n).unwrap()))
            .into_iter()
            .chain(
                found
                    .into_iter()
                    .map(|uid| Ttlv::text(tags::UNIQUE_IDENTIFIER, uid)),
            )
            .collect())
    }
}

/// The milliseconds past its Initial Date's second an object was made at (with
/// `DateBounds::SubSecond`): fixed per object, zero for some.
fn millis(o: &Object) -> i64 {
    o.uid
        .bytes()
        .fold(0i64, |h, b| (h * 31 + i64::from(b)) % 1000)
}

fn is_destroyed(o: &Object) -> bool {
    matches!(o.state, state::DESTROYED | state::DESTROYED_COMPROMISED)
}

/// A `QuirkyKmip` without quirks on 127.0.0.1 (port 0) with the certificates of the test PKI
/// (`fixtures::pki`), so that no PyKMIP is needed; and a configuration directory that names it
/// by `host` (`localhost` makes every connection start with a host name lookup).
pub fn serve_in_process(
    uid_prefix: &str,
    host: &str,
) -> (
    std::sync::Arc<QuirkyKmip>,
    super::fault_server::FaultServer,
    super::fixtures::TestConfDir,
) {
    let pki = super::fixtures::pki();
    let kmip = std::sync::Arc::new(QuirkyKmip::new(uid_prefix));
    let fault = super::fault_server::FaultServer::start(super::fault_server::Fault::Kmip {
        tls: super::fixtures::rustls_server_config(&pki.server_cert, &pki.server_key, &pki.ca_cert),
        server: kmip.clone(),
    });
    let conf = super::fixtures::make_conf_dir(&super::fixtures::Layout {
        ora: Some(format!("SERVER={host}:{}\n", fault.port())),
        ..pki.layout()
    });
    (kmip, fault, conf)
}
