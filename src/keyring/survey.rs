//! Every object a Locate matches, with its attributes, complete or an error; never silently
//! partial.
//!
//! Real servers cap Locate answers (one returns at most 1000 identifiers whatever Maximum Items
//! says) and KMIP 1.1 has no Offset Items. So a search is partitioned by Initial Date ranges
//! (KMIP allows a range as two Initial Date attributes) until every part is known to be whole:
//! - an answer of Maximum Items or more identifiers may be capped;
//! - the first answer of a search (64 or more identifiers) is checked once by splitting it in
//!   two at its median Initial Date: a server that capped it shows identifiers the first answer
//!   lacked, and its cap (that answer's size) is then learned, so every later answer of that
//!   size is split too;
//! - an answer over the response cap is split in time.
//!
//! What a search learns of a server's answers (its cap, or the largest answer shown to be
//! whole) is kept between listings (`LocateHabits`), so that the probe is not repeated on
//! every listing of an unchanged server.
//!
//! Attributes (names, state, dates) come from Get Attributes, many objects per request (batch
//! items). The whole search runs under one deadline and on one server: an answer from another
//! server (after a failover) stops it, since identifiers differ between servers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::connector::{ClientError, KmipClient, Retry, TransportError};
use crate::kmip::{self, ItemResult, LocateFilter, Request, TtlvErrorKind, ops, tags};

/// Maximum Items asked of every Locate. Even with 48-byte UUID identifiers the answer stays
/// below the client's 1 MiB response cap (786 KiB).
pub const LOCATE_PAGE: usize = 16_384;
/// First answers this large are checked for a silent cap (no server caps lower).
pub const PROBE_MIN: usize = 64;
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

/// What earlier searches learned of how servers cap Locate answers, by server.
#[derive(Clone, Debug, Default)]
pub struct LocateHabits {
    per_server: HashMap<String, Habit>,
}

/// How one server answers Locate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Habit {
    /// The most identifiers it returns in one answer, when known to cap.
    pub cap: Option<usize>,
    /// The largest answer shown to be whole: answers no larger are not capped.
    pub whole_up_to: usize,
    learned: Instant,
    /// The client's connection count when learned: the habit holds for that connection only.
    connection: u64,
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

    pub fn record(&mut self, server: String, habit: Habit) {
        self.per_server.insert(server, habit);
    }
}

/// The attributes asked for every object.
const ATTRIBUTES: [&str; 5] = [
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
    fn from_attributes(uid: &str, attributes: &[ops::Attribute]) -> Self {
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
    /// The answer this part was split from, to see whether it was capped.
    parent: Option<Rc<(usize, HashSet<String>)>>,
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
    /// What earlier searches learned, applied once the server is known.
    recalled: LocateHabits,
    /// When the habit applied was learned: recalling it does not make it newer.
    learned: Option<Instant>,
    /// Requests sent.
    pub round_trips: usize,
    pub locates: usize,
}

impl<'a> Surveyor<'a> {
    pub fn new(client: &'a KmipClient, deadline: Instant) -> Self {
        Surveyor {
            client,
            deadline,
            server: None,
            known: HashMap::new(),
            cap: None,
            whole_up_to: 0,
            recalled: LocateHabits::default(),
            learned: None,
            round_trips: 0,
            locates: 0,
        }
    }

    /// Starts from what earlier searches learned of the servers.
    pub fn recall(&mut self, habits: &LocateHabits) {
        self.recalled = habits.clone();
    }

    /// What this search knows of the server's answers, for later searches.
    pub fn habit(&self) -> Option<(String, Habit)> {
        let server = self.server.clone()?;
        Some((
            server,
            Habit {
                cap: self.cap,
                whole_up_to: self.whole_up_to,
                learned: self.learned.unwrap_or_else(Instant::now),
                connection: self.client.health().connections(),
            },
        ))
    }

    /// The server every answer came from (None before the first request).
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    fn send(&mut self, requests: &[Request]) -> Result<Vec<Option<ItemResult>>, SurveyError> {
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
        let answer = self.client.request_batch(requests, Retry::Idempotent)?;
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
                    self.learned = Some(habit.learned);
                }
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

    fn locate(
        &mut self,
        filter: &LocateFilter<'_>,
        state: Option<u32>,
        range: Option<(i64, i64)>,
    ) -> Result<Located, SurveyError> {
        self.locates += 1;
        let page = i32::try_from(LOCATE_PAGE).unwrap_or(i32::MAX);
        let request = ops::locate_where(filter, state, range, Some(page));
        let item = match self.send(&[request]) {
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
                // A server may list an object twice; the order is kept for nothing.
                let unique: BTreeSet<String> = uids.into_iter().collect();
                Ok(Located::Found(unique.into_iter().collect()))
            }
            // "Object Not Found" and the like answer a search with nothing in it.
            Some(Err(e)) if e.is_absent() => Ok(Located::Found(Vec::new())),
            Some(Err(e)) => Err(self.server_error(e)),
            None => Err(self.server_error(kmip::KmipError::Malformed(
                "the Locate went unanswered".into(),
            ))),
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
        let mut found: BTreeSet<String> = BTreeSet::new();
        // The size of the first answer when it was probed.
        let mut probed = None;
        let mut parts = vec![Part {
            range: None,
            parent: None,
        }];
        while let Some(part) = parts.pop() {
            let uids = match self.locate(filter, state, part.range)? {
                Located::Found(uids) => uids,
                Located::TooLarge => {
                    let (from, to) = part.range.unwrap_or((0, LAST_DATE));
                    if from >= to || self.locates > MAX_LOCATES {
                        return Err(SurveyError::Incomplete(format!(
                            "the answer for the objects made at {from} s after 1970 exceeds the 1 MiB response cap"
                        )));
                    }
                    let mid = from + (to - from) / 2;
                    parts.push(Part {
                        range: Some((from, mid)),
                        parent: None,
                    });
                    parts.push(Part {
                        range: Some((mid + 1, to)),
                        parent: None,
                    });
                    continue;
                }
            };
            let count = uids.len();
            if let Some(parent) = &part.parent {
                if uids.iter().any(|u| !parent.1.contains(u)) {
                    // The part it was split from lacked some of these: that answer was capped.
                    self.learn_cap(parent.0);
                }
            }
            if count > LOCATE_PAGE {
                // Maximum Items is ignored; the server caps where it likes.
                self.learn_cap(count);
            }
            self.describe(&uids)?;
            found.extend(uids.iter().cloned());
            let capped = count >= LOCATE_PAGE || self.cap.is_some_and(|c| count >= c);
            let probe = part.range.is_none()
                && count >= PROBE_MIN
                && self.cap.is_none()
                && count > self.whole_up_to;
            if !capped && !probe {
                continue;
            }
            if probe {
                probed = Some(count);
            }
            if let Some((from, to)) = part.range {
                let outside = uids.iter().any(|u| {
                    self.info(u)
                        .and_then(|i| i.initial_date)
                        .is_some_and(|d| d < from || d > to)
                });
                if outside {
                    return Err(SurveyError::Incomplete(
                        "the KMIP server caps Locate answers and ignores Initial Date ranges, so its objects cannot be listed completely".into(),
                    ));
                }
            }
            if self.locates > MAX_LOCATES {
                return Err(SurveyError::Incomplete(format!(
                    "the search needed more than {MAX_LOCATES} Locate requests"
                )));
            }
            match self.split_point(&uids, part.range) {
                Some((low, high)) => {
                    let parent = Rc::new((count, uids.into_iter().collect::<HashSet<_>>()));
                    parts.push(Part {
                        range: Some(low),
                        parent: Some(parent.clone()),
                    });
                    parts.push(Part {
                        range: Some(high),
                        parent: Some(parent),
                    });
                }
                None if capped => {
                    let when = part.range.map_or(String::new(), |(from, _)| {
                        format!(" (Initial Date {from} s after 1970)")
                    });
                    return Err(SurveyError::Incomplete(format!(
                        "the KMIP server returns at most {count} objects per Locate, and more objects than that were made in the same second{when}, so they cannot be told apart by date"
                    )));
                }
                None => {}
            }
        }
        if let (Some(count), None) = (probed, self.cap) {
            // Its parts held nothing it lacked: that answer was whole.
            self.whole_up_to = self.whole_up_to.max(count);
        }
        Ok(found.iter().filter_map(|u| self.info(u).cloned()).collect())
    }

    fn learn_cap(&mut self, count: usize) {
        if self.cap.is_none_or(|c| count < c) {
            tracing::debug!("the KMIP server caps Locate answers at {count} identifiers");
            self.cap = Some(count);
        }
    }

    /// Two ranges that split `uids` about evenly by Initial Date, or None when the range is a
    /// single second.
    fn split_point(
        &self,
        uids: &[String],
        range: Option<(i64, i64)>,
    ) -> Option<((i64, i64), (i64, i64))> {
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
                // One second: a part without any of these objects shows whether there were
                // more the answer left out.
                if low > from { low - 1 } else { low }
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
        Some(((from, at), (at + 1, to)))
    }
}
