//! Every object a Locate matches, with its attributes, complete or an error; never silently
//! partial.
//!
//! Real servers cap Locate answers (one returns at most 1000 identifiers whatever Maximum Items
//! says; others far fewer). An answer of N identifiers only shows that the server's cap is at
//! least N, so an answer is taken as whole only when it is smaller than one the server was
//! seen to give (or than its cap, once learned), or when it holds at most one identifier (a
//! lookup of one name: fewer than `LOOKUP_PROBE_MIN`). Any other answer is completed by one of
//! two methods, chosen per server:
//! - **Offset Items paging**, where the server offers KMIP 1.3 or later in Discover Versions.
//!   Each page is asked to start at the last identifier of the one before (the anchor), and
//!   must start exactly there: an anchor missing or out of place (objects removed, made or
//!   moved meanwhile: a server without a stable order moves an updated object, possibly from
//!   the pages still to read to those already read) starts the paging again, and a page that
//!   starts with the first identifier of the listing again shows a server that ignores Offset
//!   Items. The end is an answer that holds nothing after the anchor. Where the server sends
//!   Located Items (KMIP 1.3), the listing must hold exactly that many objects, or the paging
//!   starts again.
//! - **Initial Date partitioning** otherwise (KMIP 1.1 allows a range as two Initial Date
//!   attributes): the search is split in time until every part is known to be whole. The
//!   first answer of a search is checked once by splitting it at its median Initial Date: a
//!   server that capped it shows identifiers the first answer lacked, and its cap is then
//!   learned. Every object of a part is checked to lie in the part's range (an object outside
//!   it shows a server that ignores Initial Date ranges), and the parts of an answer must hold
//!   every object of it that still exists (one left out shows a server whose ranges leave
//!   objects out: an exclusive end, or sub-second dates compared with whole seconds; it would
//!   leave out unseen objects of those seconds too).
//!
//! A server seen to ignore Offset Items or Initial Date ranges is never trusted with that
//! method again (for the life of the keyring). When neither method can be shown to give every
//! object, the search fails with one line that says what the server does.
//!
//! What a listing promises while objects are made or removed: every object that exists from
//! the start of the listing to its end is listed, once; an object made or removed meanwhile may
//! or may not be.
//!
//! What a search learns of a server's answers (its cap, the largest answer shown to be whole,
//! the protocol versions it offers) is kept between listings (`LocateHabits`), for one
//! connection and at most `HABIT_TTL`, so that the probe is not repeated on every listing of
//! an unchanged server.
//!
//! Attributes (names, state, dates) come from Get Attributes, many objects per request (batch
//! items). The whole search runs under one deadline and on one server: an answer from another
//! server (after a failover) stops it, since identifiers differ between servers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::connector::{ClientError, KmipClient, Retry, TransportError};
use crate::kmip::{self, ItemResult, LocateFilter, Request, TtlvErrorKind, ops, tags};

/// Maximum Items asked of every Locate. Even with 48-byte UUID identifiers the answer stays
/// below the client's 1 MiB response cap (786 KiB).
pub const LOCATE_PAGE: usize = 16_384;
/// Listing answers this large are checked for a silent cap. A single identifier is taken as
/// it is: a server that returns one identifier per Locate cannot be paged from an anchor at
/// all.
pub const PROBE_MIN: usize = 2;
/// Lookups of one name check answers only from this size on. A name carries few objects, and
/// checking every answer of two (a key and a leftover under its name) would cost each such
/// read one to three Locates more, and fail it on a server no method can check, where it
/// worked before.
pub const LOOKUP_PROBE_MIN: usize = 64;
/// The smallest Locate page asked when a page's answer exceeds the response cap.
const MIN_PAGE: usize = 64;
/// Get Attributes items per request.
pub const DESCRIBE_BATCH: usize = 250;
/// A bound on the parts of one search.
const MAX_LOCATES: usize = 4096;
/// The end of the Initial Date range: 9999-12-31T23:59:59Z.
const LAST_DATE: i64 = 253_402_300_799;
/// How long what was learned of a server's answers is trusted before it is checked again. It
/// is also forgotten whenever the connection is replaced, since a server reconfigured or
/// replaced behind the same address drops its connections.
pub const HABIT_TTL: Duration = Duration::from_secs(3600);

/// What earlier searches learned of how servers answer Locate, by server.
#[derive(Clone, Debug, Default)]
pub struct LocateHabits {
    per_server: HashMap<String, Habit>,
    /// What servers were seen to ignore: kept for the keyring's life, since a server that
    /// ignored a filter once cannot be trusted with it again.
    ignores: HashMap<String, Ignores>,
}

/// How one server answers Locate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Habit {
    /// The most identifiers it returns in one answer, when known to cap.
    pub cap: Option<usize>,
    /// The largest answer shown to be whole: the cap is at least this, so smaller answers are
    /// not capped (one this large may be: a server capping at N that held exactly N objects).
    pub whole_up_to: usize,
    /// The protocol version Locate pages are sent in (None: the server offers no version
    /// with Offset Items), once Discover Versions was asked.
    pub paging: Option<Option<(i32, i32)>>,
    learned: Instant,
    /// The client's connection count when learned: the habit holds for that connection only.
    connection: u64,
}

/// Locate filters a server was seen to ignore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ignores {
    pub initial_date: bool,
    pub offset_items: bool,
    /// Its Initial Date ranges leave out objects inside them.
    pub date_bounds: bool,
}

impl LocateHabits {
    /// What is known of `server` on connection number `connection`, unless it is older than
    /// `HABIT_TTL`.
    pub fn get(&self, server: &str, connection: u64) -> Option<Habit> {
        self.per_server
            .get(server)
            .copied()
            .filter(|h| h.connection == connection && h.learned.elapsed() < HABIT_TTL)
    }

    /// The filters `server` was ever seen to ignore.
    pub fn ignores(&self, server: &str) -> Ignores {
        self.ignores.get(server).copied().unwrap_or_default()
    }

    pub fn record(&mut self, server: String, habit: Habit, ignores: Ignores) {
        if ignores != Ignores::default() {
            self.ignores.insert(server.clone(), ignores);
        }
        self.per_server.insert(server, habit);
    }
}

/// How a search made sure it had every object, for the status a DBA reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// One answer, known not to be capped.
    Single,
    /// Locate pages with Offset Items, in this protocol version.
    Paged((i32, i32)),
    /// Locates split by Initial Date ranges.
    Dates,
    /// No method can show this server's answers complete: what it does.
    Unlistable(String),
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Single => f.write_str("single Locate answer"),
            Method::Paged((major, minor)) => {
                write!(f, "Offset Items paging (KMIP {major}.{minor})")
            }
            Method::Dates => f.write_str("Initial Date partitioning"),
            Method::Unlistable(what) => write!(f, "none: {what}"),
        }
    }
}

/// The attributes asked for every object.
pub(crate) const ATTRIBUTES: [&str; 5] = [
    tags::attr::NAME,
    tags::attr::STATE,
    tags::attr::OBJECT_TYPE,
    tags::attr::CRYPTOGRAPHIC_LENGTH,
    tags::attr::INITIAL_DATE,
];

/// One object as Get Attributes describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectInfo {
    pub uid: String,
    pub names: Vec<String>,
    pub state: Option<u32>,
    pub object_type: Option<u32>,
    pub length_bits: Option<i32>,
    pub initial_date: Option<i64>,
}

impl ObjectInfo {
    pub(crate) fn from_attributes(uid: &str, attributes: &[ops::Attribute]) -> Self {
        ObjectInfo {
            uid: uid.to_string(),
            names: ops::attr_names(attributes)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            state: ops::attr_state(attributes),
            object_type: ops::attr_object_type(attributes),
            length_bits: ops::attr_cryptographic_length(attributes),
            initial_date: ops::attr_initial_date(attributes),
        }
    }

    pub fn is_named(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    pub fn is_active(&self) -> bool {
        self.state == Some(tags::state::ACTIVE)
    }

    /// Not destroyed: an object a remove still has to retire.
    pub fn is_live(&self) -> bool {
        !matches!(
            self.state,
            Some(tags::state::DESTROYED | tags::state::DESTROYED_COMPROMISED)
        )
    }
}

#[derive(Debug)]
pub enum SurveyError {
    Client(ClientError),
    /// Answers came from two servers.
    Moved {
        from: String,
        to: String,
    },
    /// The deadline passed; `done` says how far it got.
    Deadline {
        done: String,
    },
    /// The server's answers cannot be made complete.
    Incomplete(String),
}

impl SurveyError {
    /// Why a listing bounded by `within` is not given, for every error but the client's own.
    pub fn why(&self, within: Duration) -> String {
        match self {
            SurveyError::Client(e) => e.to_string(),
            SurveyError::Moved { from, to } => format!(
                "the answers came from KMIP server {from} and then from {to} (a failover); run it again"
            ),
            SurveyError::Deadline { done } => {
                format!("it did not finish within {} s ({done})", within.as_secs())
            }
            SurveyError::Incomplete(why) => why.clone(),
        }
    }
}

/// Why partitioning by date did not give every object.
enum PartitionError {
    /// An object outside a part's range was in its answer.
    DatesIgnored,
    /// The parts of an answer left out an object of it that still exists: what was left out.
    DatesUncovered(String),
    Survey(SurveyError),
}

impl From<SurveyError> for PartitionError {
    fn from(e: SurveyError) -> Self {
        PartitionError::Survey(e)
    }
}

impl From<ClientError> for SurveyError {
    fn from(e: ClientError) -> Self {
        SurveyError::Client(e)
    }
}

enum Located {
    Found(Vec<String>),
    TooLarge,
}

struct Part {
    /// Inclusive Initial Date range; None for the first, unfiltered search.
    range: Option<(i64, i64)>,
    /// The answer this part was split from (an index into the search's splits), to see
    /// whether it was capped and whether its parts hold all of it.
    parent: Option<usize>,
}

/// An answer split in parts.
struct Split {
    count: usize,
    members: HashSet<String>,
    /// The answer it is itself a part of.
    parent: Option<usize>,
    /// What the answers of its parts, and of theirs, held.
    covered: HashSet<String>,
}

/// One search session: one deadline, one server, what is known so far.
pub struct Surveyor<'a> {
    client: &'a KmipClient,
    deadline: Instant,
    server: Option<String>,
    /// uid -> attributes, or None for an object gone in the meantime.
    known: HashMap<String, Option<ObjectInfo>>,
    /// The largest answer the server gives, once learned.
    cap: Option<usize>,
    /// Answers no larger than this are known to be whole.
    whole_up_to: usize,
    /// The version Locate pages go in, once Discover Versions was asked.
    paging: Option<Option<(i32, i32)>>,
    /// Filters this server was seen to ignore.
    ignores: Ignores,
    /// What earlier searches learned, applied once the server is known.
    recalled: LocateHabits,
    /// When the habit applied was learned: recalling it does not make it newer.
    learned: Option<Instant>,
    /// How the searches so far were made complete (the most involved one).
    method: Option<Method>,
    /// The Located Items count of the last Locate answer, where the server sent one.
    located_items: Option<usize>,
    /// Why paging did not settle, for the line that says the server cannot be listed.
    paging_trouble: Option<String>,
    /// Answers smaller than this are whole (`PROBE_MIN`, or `LOOKUP_PROBE_MIN` in a lookup).
    probe_min: usize,
    /// Requests sent.
    pub round_trips: usize,
    pub locates: usize,
}

/// How paging a search ended.
enum Paged {
    Complete,
    /// The server was shown to ignore Offset Items: never page it again.
    Ignored(String),
    /// The pages kept shifting: not for this search.
    Unsettled(String),
}

/// How often a paging is started again when its pages do not join up.
const PAGING_ATTEMPTS: usize = 4;

impl<'a> Surveyor<'a> {
    pub fn new(client: &'a KmipClient, deadline: Instant) -> Self {
        Surveyor {
            client,
            deadline,
            server: None,
            known: HashMap::new(),
            cap: None,
            whole_up_to: 0,
            paging: None,
            ignores: Ignores::default(),
            recalled: LocateHabits::default(),
            learned: None,
            method: None,
            located_items: None,
            paging_trouble: None,
            probe_min: PROBE_MIN,
            round_trips: 0,
            locates: 0,
        }
    }

    /// Starts from what earlier searches learned of the servers.
    pub fn recall(&mut self, habits: &LocateHabits) {
        self.recalled = habits.clone();
    }

    /// What this search knows of the server's answers, for later searches.
    pub fn habit(&self) -> Option<(String, Habit, Ignores)> {
        let server = self.server.clone()?;
        Some((
            server,
            Habit {
                cap: self.cap,
                whole_up_to: self.whole_up_to,
                paging: self.paging,
                learned: self.learned.unwrap_or_else(Instant::now),
                connection: self.client.health().connections(),
            },
            self.ignores,
        ))
    }

    /// The server every answer came from (None before the first request).
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// How the searches were made complete (None before any finished).
    pub fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }

    fn used(&mut self, method: Method) {
        if self.method.is_none() || method != Method::Single {
            self.method = Some(method);
        }
    }

    fn send(&mut self, requests: &[Request]) -> Result<Vec<Option<ItemResult>>, SurveyError> {
        self.send_as(requests, None)
    }

    /// Sends `requests` as one message, in protocol `version` when given (then only to the
    /// server of the earlier answers).
    fn send_as(
        &mut self,
        requests: &[Request],
        version: Option<(i32, i32)>,
    ) -> Result<Vec<Option<ItemResult>>, SurveyError> {
        if Instant::now() >= self.deadline {
            return Err(SurveyError::Deadline {
                done: format!(
                    "{} objects described in {} requests",
                    self.known.len(),
                    self.round_trips
                ),
            });
        }
        self.round_trips += 1;
        let answer = match (version, &self.server) {
            (Some(version), Some(server)) => self
                .client
                .request_batch_as(server, requests, Retry::Idempotent, version)
                .map_err(|e| match e {
                    ClientError::Moved { expected, now } => SurveyError::Moved {
                        from: expected,
                        to: now,
                    },
                    e => SurveyError::Client(e),
                })?,
            _ => self.client.request_batch(requests, Retry::Idempotent)?,
        };
        match &self.server {
            Some(s) if *s != answer.server => {
                let mut items = answer.items;
                items
                    .iter_mut()
                    .flatten()
                    .flatten()
                    .for_each(kmip::Ttlv::zeroize);
                Err(SurveyError::Moved {
                    from: s.clone(),
                    to: answer.server,
                })
            }
            Some(_) => Ok(answer.items),
            None => {
                let connection = self.client.health().connections();
                if let Some(habit) = self.recalled.get(&answer.server, connection) {
                    self.cap = self.cap.or(habit.cap);
                    self.whole_up_to = self.whole_up_to.max(habit.whole_up_to);
                    self.paging = self.paging.or(habit.paging);
                    self.learned = Some(habit.learned);
                }
                self.ignores = self.recalled.ignores(&answer.server);
                self.server = Some(answer.server);
                Ok(answer.items)
            }
        }
    }

    fn server_error(&self, source: kmip::KmipError) -> SurveyError {
        SurveyError::Client(ClientError::Server {
            server: self.server.clone().unwrap_or_default(),
            source,
        })
    }

    fn server_name(&self) -> &str {
        self.server.as_deref().unwrap_or("(none)")
    }

    fn locate(
        &mut self,
        filter: &LocateFilter<'_>,
        state: Option<u32>,
        range: Option<(i64, i64)>,
    ) -> Result<Located, SurveyError> {
        let page = i32::try_from(LOCATE_PAGE).unwrap_or(i32::MAX);
        let request = ops::locate_where(filter, state, range, Some(page));
        self.locate_with(request, None)
    }

    fn locate_with(
        &mut self,
        request: Request,
        version: Option<(i32, i32)>,
    ) -> Result<Located, SurveyError> {
        self.locates += 1;
        self.located_items = None;
        let item = match self.send_as(&[request], version) {
            Ok(mut items) => items.pop().flatten(),
            Err(SurveyError::Client(ClientError::Transport(TransportError::Garbage {
                source,
                ..
            }))) if matches!(source.kind, TtlvErrorKind::TooLarge { .. }) => {
                return Ok(Located::TooLarge);
            }
            Err(e) => return Err(e),
        };
        match item {
            Some(Ok(payload)) => {
                let uids = ops::parse_locate(&payload).map_err(|e| self.server_error(e))?;
                self.located_items =
                    ops::parse_located_items(&payload).map_err(|e| self.server_error(e))?;
                // A server may list an object twice; the first place counts.
                let mut seen = HashSet::new();
                Ok(Located::Found(
                    uids.into_iter()
                        .filter(|u| seen.insert(u.clone()))
                        .collect(),
                ))
            }
            // "Object Not Found" and the like answer a search with nothing in it.
            Some(Err(e)) if e.is_absent() => Ok(Located::Found(Vec::new())),
            Some(Err(e)) => Err(self.server_error(e)),
            None => Err(self.server_error(kmip::KmipError::Malformed(
                "the Locate went unanswered".into(),
            ))),
        }
    }

    /// The protocol version to page in, asking Discover Versions once per connection.
    fn paging_version(&mut self) -> Result<Option<(i32, i32)>, SurveyError> {
        if let Some(known) = self.paging {
            return Ok(known);
        }
        let item = self.send(&[ops::discover_versions()])?.pop().flatten();
        let version = match item {
            Some(Ok(payload)) => {
                let offered =
                    ops::parse_discover_versions(&payload).map_err(|e| self.server_error(e))?;
                ops::paging_version(&offered)
            }
            // A server without Discover Versions speaks KMIP 1.0 or 1.1.
            Some(Err(_)) | None => None,
        };
        tracing::debug!(
            "KMIP server {} pages Locate answers: {}",
            self.server_name(),
            version.map_or("no (KMIP 1.1)".into(), |(a, b)| format!("KMIP {a}.{b}"))
        );
        self.paging = Some(version);
        Ok(version)
    }

    /// One page of a paged Locate. An answer over the response cap asks for smaller pages.
    fn locate_page(
        &mut self,
        filter: &LocateFilter<'_>,
        state: Option<u32>,
        version: (i32, i32),
        offset: usize,
        max_items: &mut usize,
    ) -> Result<Vec<String>, SurveyError> {
        loop {
            let request = ops::locate_page(
                filter,
                state,
                i32::try_from(offset).unwrap_or(i32::MAX),
                i32::try_from(*max_items).unwrap_or(i32::MAX),
            );
            match self.locate_with(request, Some(version))? {
                Located::Found(uids) => return Ok(uids),
                Located::TooLarge if *max_items > MIN_PAGE => *max_items /= 2,
                Located::TooLarge => {
                    return Err(SurveyError::Incomplete(format!(
                        "KMIP server {} answers a Locate page of {} identifiers with more than the 1 MiB response cap",
                        self.server_name(),
                        max_items
                    )));
                }
            }
        }
    }

    /// Fetches the attributes of the objects not yet known, many per request.
    pub fn describe(&mut self, uids: &[String]) -> Result<(), SurveyError> {
        let mut pending: Vec<String> = uids
            .iter()
            .filter(|u| !self.known.contains_key(*u))
            .cloned()
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut left = Vec::new();
            for chunk in pending.chunks(DESCRIBE_BATCH) {
                let requests: Vec<Request> = chunk
                    .iter()
                    .map(|u| ops::get_attributes(u, &ATTRIBUTES))
                    .collect();
                let items = self.send(&requests)?;
                for (uid, item) in chunk.iter().zip(items) {
                    match item {
                        Some(Ok(payload)) => {
                            if ops::parse_uid_echo(&payload).is_some_and(|echo| echo != *uid) {
                                return Err(self.server_error(kmip::KmipError::Malformed(
                                    format!("Get Attributes of {uid} answered for another object"),
                                )));
                            }
                            let attributes = ops::parse_get_attributes(&payload)
                                .map_err(|e| self.server_error(e))?;
                            self.known.insert(
                                uid.clone(),
                                Some(ObjectInfo::from_attributes(uid, &attributes)),
                            );
                        }
                        // Destroyed between the Locate and now.
                        Some(Err(e)) if e.is_absent() => {
                            self.known.insert(uid.clone(), None);
                        }
                        Some(Err(e)) => return Err(self.server_error(e)),
                        // Left out by the server: asked again.
                        None => left.push(uid.clone()),
                    }
                }
            }
            if left.len() == before {
                return Err(SurveyError::Incomplete(format!(
                    "the KMIP server answered none of {before} Get Attributes requests sent as batch items"
                )));
            }
            pending = left;
        }
        Ok(())
    }

    /// The attributes of `uid`, if it was described and exists.
    pub fn info(&self, uid: &str) -> Option<&ObjectInfo> {
        self.known.get(uid).and_then(Option::as_ref)
    }

    /// Every object matching `filter` (and `state`, which a server may ignore: callers check
    /// the state they get back).
    pub fn search(
        &mut self,
        filter: &LocateFilter<'_>,
        state: Option<u32>,
    ) -> Result<Vec<ObjectInfo>, SurveyError> {
        self.probe_min = if filter.name.is_some() {
            LOOKUP_PROBE_MIN
        } else {
            PROBE_MIN
        };
        let first = match self.locate(filter, state, None)? {
            Located::Found(uids) => Some(uids),
            Located::TooLarge => None,
        };
        let counted = self.located_items;
        if let Some(uids) = &first {
            // A Located Items count the answer falls short of shows it capped.
            if self.is_whole(uids.len()) && counted.is_none_or(|n| n == uids.len()) {
                self.describe(uids)?;
                self.used(Method::Single);
                return Ok(self.infos(uids.iter()));
            }
        }
        if !self.ignores.offset_items {
            if let Some(version) = self.paging_version()? {
                let mut found = BTreeSet::new();
                match self.page(filter, state, version, first.clone(), &mut found)? {
                    Paged::Complete => {
                        self.used(Method::Paged(version));
                        return Ok(self.infos(found.iter()));
                    }
                    Paged::Ignored(what) => {
                        tracing::warn!(
                            "KMIP server {} {what}: it ignores Offset Items, so its listings are made complete by Initial Date ranges instead",
                            self.server_name()
                        );
                        self.ignores.offset_items = true;
                    }
                    Paged::Unsettled(what) => {
                        tracing::debug!(
                            "KMIP server {}: {what}; listing by Initial Date ranges instead",
                            self.server_name()
                        );
                        self.paging_trouble = Some(what);
                    }
                }
            }
        }
        if self.ignores.initial_date || self.ignores.date_bounds {
            return Err(self.unlistable(first.as_ref().map(Vec::len)));
        }
        match self.partition(filter, state, first.clone()) {
            Ok(found) => {
                self.used(Method::Dates);
                Ok(self.infos(found.iter()))
            }
            Err(PartitionError::DatesIgnored) => {
                tracing::warn!(
                    "KMIP server {} ignores Initial Date ranges in Locate",
                    self.server_name()
                );
                self.ignores.initial_date = true;
                Err(self.unlistable(first.as_ref().map(Vec::len)))
            }
            Err(PartitionError::DatesUncovered(what)) => {
                tracing::warn!(
                    "KMIP server {} leaves objects out of the Initial Date ranges that hold them ({what}; an exclusive end, or sub-second dates compared with whole seconds), so its listings are never split by date",
                    self.server_name()
                );
                self.ignores.date_bounds = true;
                Err(self.unlistable(first.as_ref().map(Vec::len)))
            }
            Err(PartitionError::Survey(e)) => Err(e),
        }
    }

    /// Whether an unfiltered answer of `count` identifiers is known to be every object: an
    /// answer of N only shows that the cap is at least N, so only a smaller one is whole.
    fn is_whole(&self, count: usize) -> bool {
        count < self.probe_min
            || count < LOCATE_PAGE
                && (count < self.whole_up_to || self.cap.is_some_and(|cap| count < cap))
    }

    fn infos<'s>(&self, uids: impl Iterator<Item = &'s String>) -> Vec<ObjectInfo> {
        let unique: BTreeSet<&String> = uids.collect();
        unique
            .into_iter()
            .filter_map(|u| self.info(u).cloned())
            .collect()
    }

    /// The line for a server whose answers no method can show to be complete.
    fn unlistable(&mut self, first: Option<usize>) -> SurveyError {
        let answers = match (self.cap, first) {
            (Some(cap), _) => format!("returns at most {cap} identifiers per Locate"),
            (None, Some(count)) => {
                format!("returned {count} identifiers for one Locate without showing that is all")
            }
            (None, None) => "answers Locate with more than the 1 MiB response cap".into(),
        };
        let dates = if self.ignores.initial_date {
            "ignores Initial Date ranges"
        } else {
            "leaves objects out of Initial Date ranges"
        };
        let paging = match (&self.paging, &self.paging_trouble) {
            _ if self.ignores.offset_items => "ignores Offset Items".to_string(),
            (Some(Some(_)), Some(why)) => format!("pages Locate answers inconsistently ({why})"),
            (Some(Some(_)), None) => "pages Locate answers inconsistently".to_string(),
            _ => "offers no KMIP 1.3 Offset Items".to_string(),
        };
        self.method = Some(Method::Unlistable(format!(
            "{answers}, {dates} and {paging}"
        )));
        SurveyError::Incomplete(format!(
            "KMIP server {} {answers}, {dates} and {paging}, so its objects cannot be listed completely; raise the server's limit on Locate answers above the number of objects it holds, or use a server release that honours KMIP 1.3 Offset Items (fetches and writes keep working)",
            self.server_name()
        ))
    }

    /// How many of `found` exist (were described and not found gone).
    fn existing(&self, found: &BTreeSet<String>) -> usize {
        found.iter().filter(|u| self.info(u).is_some()).count()
    }

    /// Pages through every object matching `filter` with Offset Items, starting from `first`
    /// (the answer to the same Locate without Offset Items) when given.
    fn page(
        &mut self,
        filter: &LocateFilter<'_>,
        state: Option<u32>,
        version: (i32, i32),
        mut first: Option<Vec<String>>,
        found: &mut BTreeSet<String>,
    ) -> Result<Paged, SurveyError> {
        let mut unsettled = "its Locate pages did not join up (objects made, removed or moved meanwhile, or answers in no stable order)".to_string();
        'attempt: for _ in 0..PAGING_ATTEMPTS {
            found.clear();
            let mut max_items = LOCATE_PAGE;
            let head_page = match first.take() {
                Some(uids) => uids,
                None => self.locate_page(filter, state, version, 0, &mut max_items)?,
            };
            self.describe(&head_page)?;
            found.extend(head_page.iter().cloned());
            let (Some(head), Some(_)) = (head_page.first().cloned(), head_page.get(1)) else {
                // Nothing to page from: Located Items, where sent, must agree.
                if let Some(counted) = self.located_items {
                    if counted != self.existing(found) {
                        unsettled = format!(
                            "its Located Items counted {counted} objects, its answer held {}",
                            self.existing(found)
                        );
                        continue 'attempt;
                    }
                }
                return Ok(Paged::Complete);
            };
            // The listing in the server's order, and the largest page seen.
            let mut order = head_page;
            let mut full = order.len();
            let mut offset = order.len() - 1;
            let mut pages = 1;
            loop {
                if self.locates > MAX_LOCATES {
                    return Err(SurveyError::Incomplete(format!(
                        "the search needed more than {MAX_LOCATES} Locate requests"
                    )));
                }
                let page = self.locate_page(filter, state, version, offset, &mut max_items)?;
                pages += 1;
                let anchor = order.last().expect("order is never empty");
                let Some(at) = page.iter().position(|u| u == anchor) else {
                    // The anchor (or an object before it) went away meanwhile.
                    continue 'attempt;
                };
                if page[0] == head {
                    return Ok(Paged::Ignored(format!(
                        "answered a Locate with Offset Items {offset} with its first page again"
                    )));
                }
                // Anything before the anchor is an object made, or moved there, before the
                // pages already read: it may be one that existed all along and moved from the
                // pages still to read (a server without a stable order after an update), which
                // no page would then return. Anything read before, after it: objects moved.
                let after = &page[at + 1..];
                if at != 0 || after.iter().any(|u| found.contains(u)) {
                    continue 'attempt;
                }
                if after.is_empty() {
                    break;
                }
                self.describe(after)?;
                found.extend(after.iter().cloned());
                order.extend(after.iter().cloned());
                full = full.max(page.len());
                offset += page.len() - 1;
            }
            // Located Items counts every object the last page's Locate matched.
            if let Some(counted) = self.located_items {
                let listed = self.existing(found);
                if counted != listed {
                    unsettled = format!(
                        "its Located Items counted {counted} objects, its pages held {listed}"
                    );
                    continue 'attempt;
                }
            }
            let first_size = full;
            if pages == 2 {
                // The first answer had nothing after it: it was whole.
                self.whole_up_to = self.whole_up_to.max(order.len());
            } else if first_size < LOCATE_PAGE {
                self.learn_cap(first_size);
            }
            return Ok(Paged::Complete);
        }
        Ok(Paged::Unsettled(format!(
            "{unsettled} in {PAGING_ATTEMPTS} attempts"
        )))
    }

    /// Every identifier matching `filter`, by Locates split in Initial Date ranges until each
    /// part is known to be whole. `first` is the answer to the unsplit Locate (None: it was
    /// over the response cap).
    fn partition(
        &mut self,
        filter: &LocateFilter<'_>,
        state: Option<u32>,
        first: Option<Vec<String>>,
    ) -> Result<BTreeSet<String>, PartitionError> {
        let mut first = first;
        let mut found: BTreeSet<String> = BTreeSet::new();
        // The size of the first answer when it was probed.
        let mut probed = None;
        let mut splits: Vec<Split> = Vec::new();
        let mut parts = vec![Part {
            range: None,
            parent: None,
        }];
        while let Some(part) = parts.pop() {
            let located = match part.range {
                // The unsplit Locate was asked already (None: its answer was too large).
                None => first.take().map_or(Located::TooLarge, Located::Found),
                Some(_) => self.locate(filter, state, part.range)?,
            };
            let uids = match located {
                Located::Found(uids) => uids,
                Located::TooLarge => {
                    let (from, to) = part.range.unwrap_or((0, LAST_DATE));
                    if from >= to || self.locates > MAX_LOCATES {
                        return Err(SurveyError::Incomplete(format!(
                            "the answer for the objects made at {from} s after 1970 exceeds the 1 MiB response cap"
                        ))
                        .into());
                    }
                    // Its halves are still parts of the answer it is a part of.
                    let mid = from + (to - from) / 2;
                    parts.push(Part {
                        range: Some((from, mid)),
                        parent: part.parent,
                    });
                    parts.push(Part {
                        range: Some((mid + 1, to)),
                        parent: part.parent,
                    });
                    continue;
                }
            };
            let count = uids.len();
            self.describe(&uids)?;
            if let Some((from, to)) = part.range {
                // Every part is checked to be a part.
                let outside = uids.iter().any(|u| {
                    self.info(u)
                        .and_then(|i| i.initial_date)
                        .is_some_and(|d| d < from || d > to)
                });
                if outside {
                    return Err(PartitionError::DatesIgnored);
                }
            }
            if let Some(parent) = part.parent {
                if uids.iter().any(|u| !splits[parent].members.contains(u)) {
                    // The part it was split from lacked some of these: that answer was capped.
                    self.learn_cap(splits[parent].count);
                }
                let mut up = Some(parent);
                while let Some(at) = up {
                    splits[at].covered.extend(uids.iter().cloned());
                    up = splits[at].parent;
                }
            }
            if count > LOCATE_PAGE {
                // Maximum Items is ignored; the server caps where it likes.
                self.learn_cap(count);
            }
            found.extend(uids.iter().cloned());
            let capped = count >= LOCATE_PAGE || self.cap.is_some_and(|c| count >= c);
            let probe = part.range.is_none() && !capped && !self.is_whole(count);
            if !capped && !probe {
                continue;
            }
            if probe {
                probed = Some(count);
            }
            if self.locates > MAX_LOCATES {
                return Err(SurveyError::Incomplete(format!(
                    "the search needed more than {MAX_LOCATES} Locate requests"
                ))
                .into());
            }
            match self.split_point(&uids, part.range) {
                Some(ranges) => {
                    splits.push(Split {
                        count,
                        members: uids.into_iter().collect(),
                        parent: part.parent,
                        covered: HashSet::new(),
                    });
                    let index = splits.len() - 1;
                    parts.extend(ranges.into_iter().map(|range| Part {
                        range: Some(range),
                        parent: Some(index),
                    }));
                }
                None if capped => {
                    let when = part.range.map_or(String::new(), |(from, _)| {
                        format!(" (Initial Date {from} s after 1970)")
                    });
                    return Err(SurveyError::Incomplete(format!(
                        "KMIP server {} returns at most {count} objects per Locate, and more objects than that were made in the same second{when}, so they cannot be told apart by date; raise the server's limit on Locate answers, or use a server release that honours KMIP 1.3 Offset Items (fetches and writes keep working)",
                        self.server_name()
                    ))
                    .into());
                }
                None => {}
            }
        }
        self.check_cover(&splits)?;
        if let (Some(count), None) = (probed, self.cap) {
            // Its parts held nothing it lacked: that answer was whole.
            self.whole_up_to = self.whole_up_to.max(count);
        }
        Ok(found)
    }

    /// Every object of a split answer that still exists must be in its parts' answers: one
    /// left out shows ranges that leave objects out, unseen ones included.
    fn check_cover(&mut self, splits: &[Split]) -> Result<(), PartitionError> {
        let left_out: BTreeSet<String> = splits
            .iter()
            .flat_map(|s| s.members.difference(&s.covered))
            .filter(|u| self.info(u).is_some())
            .cloned()
            .collect();
        if left_out.is_empty() {
            return Ok(());
        }
        // Described before it was left out: it may be gone since. Asked again.
        let left_out: Vec<String> = left_out.into_iter().collect();
        for uid in &left_out {
            self.known.remove(uid);
        }
        self.describe(&left_out)?;
        let still: Vec<&String> = left_out.iter().filter(|u| self.info(u).is_some()).collect();
        let Some(uid) = still.first() else {
            return Ok(());
        };
        let made = self
            .info(uid)
            .and_then(|i| i.initial_date)
            .map_or("no Initial Date".to_string(), |d| {
                format!("Initial Date {d} s after 1970")
            });
        Err(PartitionError::DatesUncovered(format!(
            "{} objects, such as {uid} ({made}), were in a range's answer and in none of its parts'",
            still.len()
        )))
    }

    fn learn_cap(&mut self, count: usize) {
        if self.cap.is_none_or(|c| count < c) {
            tracing::debug!("the KMIP server caps Locate answers at {count} identifiers");
            self.cap = Some(count);
        }
    }

    /// Ranges that split `uids` about evenly by Initial Date, or None when the range is a
    /// single second. An answer made in one second is split into the seconds before, that
    /// second and the seconds after: a capped answer then shows what it left out on either
    /// side of it.
    fn split_point(&self, uids: &[String], range: Option<(i64, i64)>) -> Option<Vec<(i64, i64)>> {
        let (from, to) = range.unwrap_or((0, LAST_DATE));
        if from >= to {
            return None;
        }
        let mut dates: Vec<i64> = uids
            .iter()
            .filter_map(|u| self.info(u)?.initial_date)
            .filter(|d| (from..=to).contains(d))
            .collect();
        dates.sort_unstable();
        let at = match (dates.first(), dates.last()) {
            (Some(&low), Some(&high)) if low == high => {
                let mut ranges = Vec::new();
                if low > from {
                    ranges.push((from, low - 1));
                }
                ranges.push((low, low));
                if low < to {
                    ranges.push((low + 1, to));
                }
                return Some(ranges);
            }
            (Some(_), Some(&high)) => {
                let median = dates[(dates.len() - 1) / 2];
                if median == high {
                    // Keep the newest second apart so that each part gets some.
                    dates
                        .iter()
                        .rev()
                        .copied()
                        .find(|&d| d < high)
                        .unwrap_or(median)
                } else {
                    median
                }
            }
            _ => from + (to - from) / 2,
        };
        let at = at.clamp(from, to - 1);
        Some(vec![(from, at), (at + 1, to)])
    }
}
