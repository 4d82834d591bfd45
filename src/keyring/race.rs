//! Create races between processes: two clients (two mysqld, two MariaDB servers, the admin
//! tool and a server) that make an object under the same name at the same moment must settle
//! on one object, and only that object's bytes may ever be used. A lock in one process cannot
//! do it, and KMIP 1.1 has no "create if absent", so the rule works from what every process can
//! read on the server: each object's Initial Date (the server's clock when it was made, in
//! whole seconds) and its unique identifier.
//!
//! What a process does after its Create (or Register) was answered, while its object is still
//! Pre-Active, so that nobody can have read it:
//! 1. **Wait** until the server's clock (the Time Stamp of its answers) is at least one whole
//!    second past the Initial Date of its own object.
//! 2. **Look** at every object carrying the name, in any state.
//! 3. The **contenders** are the Active objects and the Pre-Active ones that are not
//!    leftovers (a Pre-Active object made more than [`LEFTOVER_AGE`] seconds before, by the
//!    server's clock, is a failed creation nobody will activate any more). The **winner** is
//!    the contender with the earliest Initial Date, ties broken by identifier
//!    (`uid_order`: numeric identifiers by value, others bytewise); objects without a date
//!    come after those with one.
//! 4. If its own object is the winner it activates it and uses it; otherwise it destroys its
//!    own object (still Pre-Active: never read by anyone) and uses the winner, once Active (a
//!    MySQL generate or store then fails with "already exists", as it would a moment later; a
//!    winner still Pre-Active after a few seconds makes it fail naming that object).
//!
//! A failed activation (`activate_or_discard`): an object then found Active is kept and used,
//! since others may have read it; one found Pre-Active is destroyed; one whose state cannot be
//! read may be Active and is revoked before it is destroyed, so no Active orphan is left. The
//! one window left: the state cannot be read by us twice, yet another client reads the object
//! Active and uses it before our Revoke arrives.
//!
//! Why every process settles on the same object, including the tie (two objects made in the
//! same second on a server whose identifiers are UUIDs, not ordered by creation). Let process
//! A look at server time `t` and choose `W`; A's own object `X` has date `D ≤ t - 1`, so
//! `date(W) ≤ D`. Any object made after A's look is dated at least `t`'s second, i.e.
//! `≥ D + 1 > date(W)` (the server's clock does not go back): it comes after `W` whatever its
//! identifier. Any object made before A's look was seen by A (Pre-Active objects included), so
//! none of them comes before `W` unless it was gone already. Hence no object that comes before
//! `W` exists at A's look or later, and every later look that still sees `W` chooses `W`.
//! `W` disappears only if its maker destroys it, which it does only when it sees an object
//! before `W` — impossible after A's look, and before A's look such an object `Z` would have
//! to vanish before A looked, which only its own maker does, when it in turn sees an object
//! before `Z`; the earliest object ever made is never beaten, so that chain has no start.
//! The tie case is the step "made after A's look ⇒ dated later": without the wait of step 1,
//! B could make `Y` in the same second as `X` after A looked, A would use `X` and B, seeing
//! both with the same date, could choose `Y`.
//!
//! Leftovers: a maker activates its object only if its wait ended within [`ACTIVATE_WITHIN`]
//! seconds of the object's date and it sends the Activate within [`ACTIVATE_GRACE`] of that;
//! a Pre-Active object is ignored only once it is [`LEFTOVER_AGE`] seconds old. So a Pre-Active
//! object ignored by one look can be activated by its maker only if that Activate reached the
//! server more than a minute after it was sent, longer than any request timeout.
//!
//! Servers that keep names unique (`unique_names`: learned per server, again hourly, by a
//! probe, never assumed; PyKMIP does not): steps 1 and 2 are skipped, and our object `X` is
//! the winner. The probe saw the server refuse a Create and a Register under a name carried by
//! a Pre-Active object, and a Create under one carried by an Active object. So when our Create
//! of `X` is accepted, no live object carried the name (or it would have been refused), and
//! from then until we destroy `X` the server makes no other object under it. Every process's
//! look, before or after ours, therefore sees `X` as the only contender, or nothing before `X`
//! exists: `X` is the object of the name for all of them. The tie of the proof above needs a
//! second object under the name while `X` exists, which this server does not make. A look after
//! the Create would cost a Locate (on PyKMIP one that reads every object it holds) to see what
//! the probe already showed cannot be there; what is left is a server whose policy changed
//! since its probe, which the probe's hourly renewal bounds. For the same reason the MySQL
//! keyring sends its next Create without looking for the name first while its last write went
//! to such a server: an object carrying the name makes the server refuse the Create (Object
//! Already Exists), and only then is the name looked up, to say what holds it.
//!
//! Names that carry this server's own UUID (InnoDB's `INNODBKey-<server_uuid>-<n>`, the
//! binlog's `MySQLReplicationKey_<server_uuid>…`) keep the wait. Only one mysqld should write
//! them, and within one process writes of one name are ordered (`key_locks`); but the
//! UUID is not unique: it lives in the data directory's `auto.cnf`, so a restored copy of a
//! data directory (a backup, a clone, a replica set up from a file copy) runs with the same
//! UUID, and two such servers rotating their master key at the same moment write the same name.
//! That is exactly the tie above: without the wait both could activate their own object, and
//! each would encrypt with bytes the other does not use. Nothing a process can see tells a
//! lone server from one of two twins, so the proof does not hold for these names and the wait
//! stays (on servers that keep names unique it is skipped as for every name).
//!
//! A server that sends no Time Stamp or no Initial Date: the wait falls back to
//! [`FALLBACK_WAIT`] of this host's clock after the Create was answered, which is the same
//! argument as long as the two clocks run at the same rate.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use crate::connector::{ClientError, KmipClient, Retry};
use crate::kmip::{self, LocateFilter, ops, tags};

use super::survey::{ObjectInfo, SurveyError, Surveyor};
use super::{server_clock, unique_names};

/// A Pre-Active object this many seconds older than a look (server clock) is a leftover of a
/// failed creation, not a contender.
pub const LEFTOVER_AGE: i64 = 120;
/// A maker activates its object only if its wait ended at most this many seconds after the
/// object's Initial Date (server clock)...
pub const ACTIVATE_WITHIN: i64 = 30;
/// ... and at most this long after the wait ended (this host's clock).
pub const ACTIVATE_GRACE: Duration = Duration::from_secs(30);
/// The wait when the server gives no Time Stamp or no Initial Date.
pub const FALLBACK_WAIT: Duration = Duration::from_millis(2500);
/// Between two looks at the server's clock, or at a winner that is still Pre-Active.
const POLL: Duration = Duration::from_millis(200);
/// How long after the server's clock has turned, as far as its answers tell, it is asked.
const CLOCK_MARGIN: Duration = Duration::from_millis(5);
/// How closely this host must know the server's clock to sleep before its first look at it.
const CLOCK_KNOWN_WITHIN: f64 = 0.25;
/// The shortest pause between two looks at the server's clock.
const MIN_PAUSE: Duration = Duration::from_millis(20);
/// How closely the moment the server's clock turns must be known before the wait sleeps until
/// it has surely turned rather than looking in the middle of the moments it can turn at.
const NARROW_ENOUGH: Duration = Duration::from_millis(60);

/// Why a race could not be settled.
#[derive(Debug)]
pub enum RaceError {
    Client(ClientError),
    /// Anything else; the text says what and what to do.
    Other(String),
}

impl std::fmt::Display for RaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RaceError::Client(e) => write!(f, "{e}"),
            RaceError::Other(why) => f.write_str(why),
        }
    }
}

impl From<ClientError> for RaceError {
    fn from(e: ClientError) -> Self {
        RaceError::Client(e)
    }
}

impl From<SurveyError> for RaceError {
    fn from(e: SurveyError) -> Self {
        match e {
            SurveyError::Client(e) => RaceError::Client(e),
            SurveyError::Moved { from, to } => RaceError::Other(format!(
                "the answers came from KMIP server {from} and then from {to} (a failover); try again"
            )),
            SurveyError::Deadline { done } => {
                RaceError::Other(format!("the look-up did not finish in time ({done})"))
            }
            SurveyError::Incomplete(why) => RaceError::Other(why),
        }
    }
}

/// Every object named exactly `name` (of `object_type` when given), in any state, on one server.
pub struct Look {
    pub objects: Vec<ObjectInfo>,
    /// The server that answered.
    pub server: String,
    /// Its clock when it answered the Locate.
    pub now: Option<i64>,
}

impl Look {
    /// The contender that is the object of the name (see the module doc), if any.
    pub fn winner(&self) -> Option<&ObjectInfo> {
        contenders(&self.objects, self.now).min_by(|a, b| before(a, b))
    }

    /// The Active objects.
    pub fn active(&self) -> Vec<&ObjectInfo> {
        self.objects.iter().filter(|o| o.is_active()).collect()
    }
}

/// Orders KMIP unique identifiers so that, among several objects with one name, every process
/// picks the same one: numeric identifiers by value (shorter first), then byte order.
pub fn uid_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Whether object `a` comes before `b`: the earlier Initial Date, then the identifier.
pub fn before(a: &ObjectInfo, b: &ObjectInfo) -> Ordering {
    let date = |o: &ObjectInfo| o.initial_date.unwrap_or(i64::MAX);
    date(a)
        .cmp(&date(b))
        .then_with(|| uid_order(&a.uid, &b.uid))
}

/// Active objects, and Pre-Active ones that are not leftovers at server time `now`.
pub fn contenders(objects: &[ObjectInfo], now: Option<i64>) -> impl Iterator<Item = &ObjectInfo> {
    objects.iter().filter(move |o| match o.state {
        Some(tags::state::ACTIVE) => true,
        Some(tags::state::PRE_ACTIVE) => match (o.initial_date, now) {
            (Some(date), Some(now)) => now.saturating_sub(date) < LEFTOVER_AGE,
            _ => true,
        },
        _ => false,
    })
}

/// Looks up every object named `name` on `server` (or wherever the connection goes, when
/// None) with its attributes.
pub fn look(
    client: &KmipClient,
    name: &str,
    object_type: Option<u32>,
    server: Option<&str>,
    deadline: Instant,
) -> Result<Look, RaceError> {
    let found = locate(client, name, object_type, server)?;
    describe(client, name, object_type, found, deadline)
}

/// What a Locate by exact name answered: the first half of `look`, enough to tell whether
/// anything carries the name.
pub struct Found {
    pub uids: Vec<String>,
    /// The server that answered.
    pub server: String,
    /// Its clock when it answered.
    pub now: Option<i64>,
}

/// Locates the objects named `name` on `server` (or wherever the connection goes, when None).
pub fn locate(
    client: &KmipClient,
    name: &str,
    object_type: Option<u32>,
    server: Option<&str>,
) -> Result<Found, RaceError> {
    let filter = LocateFilter {
        name: Some(name),
        object_type,
    };
    let request = [ops::locate(&filter, None)];
    let answer = match server {
        Some(server) => client.request_batch_on(server, &request, Retry::Idempotent)?,
        None => client.request_batch(&request, Retry::Idempotent)?,
    };
    let failed = |source: kmip::KmipError| {
        RaceError::Client(ClientError::Server {
            server: answer.server.clone(),
            source,
        })
    };
    let uids = match answer.items.into_iter().next().flatten() {
        Some(Ok(payload)) => ops::parse_locate(&payload).map_err(failed)?,
        Some(Err(e)) => return Err(failed(e)),
        None => {
            return Err(failed(kmip::KmipError::Malformed(
                "the Locate went unanswered".into(),
            )));
        }
    };
    Ok(Found {
        uids,
        server: answer.server,
        now: answer.time_stamp,
    })
}

/// Locates the objects of several names in one message (one round trip), in order.
pub fn locate_many(
    client: &KmipClient,
    names: &[String],
    object_type: Option<u32>,
) -> Result<Vec<Found>, RaceError> {
    let requests: Vec<_> = names
        .iter()
        .map(|name| {
            ops::locate(
                &LocateFilter {
                    name: Some(name),
                    object_type,
                },
                None,
            )
        })
        .collect();
    let answer = client.request_batch(&requests, Retry::Idempotent)?;
    let failed = |source: kmip::KmipError| {
        RaceError::Client(ClientError::Server {
            server: answer.server.clone(),
            source,
        })
    };
    if answer.items.len() != names.len() {
        return Err(failed(kmip::KmipError::Malformed(format!(
            "{} answers to a batch of {} Locates",
            answer.items.len(),
            names.len()
        ))));
    }
    let mut out = Vec::with_capacity(names.len());
    for item in &answer.items {
        let uids = match item {
            Some(Ok(payload)) => ops::parse_locate(payload).map_err(failed)?,
            Some(Err(e)) => return Err(failed(e.clone())),
            None => {
                return Err(failed(kmip::KmipError::Malformed(
                    "a Locate of the batch went unanswered".into(),
                )));
            }
        };
        out.push(Found {
            uids,
            server: answer.server.clone(),
            now: answer.time_stamp,
        });
    }
    Ok(out)
}

/// The second half of `look`: the attributes of what `found` lists, from the server that
/// listed them, keeping only the objects that carry exactly `name`.
pub fn describe(
    client: &KmipClient,
    name: &str,
    object_type: Option<u32>,
    found: Found,
    deadline: Instant,
) -> Result<Look, RaceError> {
    let mut surveyor = Surveyor::new(client, deadline);
    surveyor.describe(&found.uids)?;
    if let Some(described) = surveyor.server() {
        if described != found.server {
            return Err(SurveyError::Moved {
                from: found.server.clone(),
                to: described.to_string(),
            }
            .into());
        }
    }
    let objects = found
        .uids
        .iter()
        .filter_map(|u| surveyor.info(u).cloned())
        .filter(|o| o.is_named(name))
        .filter(|o| object_type.is_none_or(|t| o.object_type.is_none_or(|got| got == t)))
        .collect();
    Ok(Look {
        objects,
        server: found.server,
        now: found.now,
    })
}

/// As [`describe`], and when the Locate found exactly one object, its Get in the same message
/// (one round trip where a description and a read took two). The Get's answer is returned as
/// the server gave it, for the caller to check and wipe; None when it was not asked or not
/// answered. Any other case, or an answer that is not about that one object, is described as
/// [`describe`] does.
pub fn describe_and_get(
    client: &KmipClient,
    name: &str,
    object_type: Option<u32>,
    found: Found,
    deadline: Instant,
) -> Result<(Look, Option<kmip::ItemResult>), RaceError> {
    let [uid] = found.uids.as_slice() else {
        return Ok((describe(client, name, object_type, found, deadline)?, None));
    };
    let requests = [
        ops::get_attributes(uid, &super::survey::ATTRIBUTES),
        ops::get(uid),
    ];
    let answer = crate::connector::with_deadline(deadline, || {
        client.request_batch_on(&found.server, &requests, Retry::Idempotent)
    });
    let mut items = match answer {
        Ok(answer) if answer.server == found.server && answer.items.len() == 2 => answer.items,
        Ok(mut answer) => {
            answer
                .items
                .iter_mut()
                .flatten()
                .flatten()
                .for_each(kmip::Ttlv::zeroize);
            return Ok((describe(client, name, object_type, found, deadline)?, None));
        }
        Err(ClientError::Moved { expected, now }) => {
            return Err(SurveyError::Moved {
                from: expected,
                to: now,
            }
            .into());
        }
        Err(e) => return Err(RaceError::Client(e)),
    };
    let mut got = items[1].take();
    // The Get's answer holds key material: wiped on every way out that does not hand it on.
    let wipe = |got: &mut Option<kmip::ItemResult>| {
        got.iter_mut().flatten().for_each(kmip::Ttlv::zeroize);
    };
    let object = match items[0].take() {
        Some(Ok(payload)) if ops::parse_uid_echo(&payload).is_none_or(|echo| echo == *uid) => {
            match ops::parse_get_attributes(&payload) {
                Ok(attributes) => Some(ObjectInfo::from_attributes(uid, &attributes)),
                Err(source) => {
                    wipe(&mut got);
                    return Err(RaceError::Client(ClientError::Server {
                        server: found.server,
                        source,
                    }));
                }
            }
        }
        // Destroyed between the Locate and now.
        Some(Err(e)) if e.is_absent() => None,
        Some(Err(source)) => {
            wipe(&mut got);
            return Err(RaceError::Client(ClientError::Server {
                server: found.server,
                source,
            }));
        }
        // Answered for another object, or not at all: described on its own.
        _ => {
            wipe(&mut got);
            return Ok((describe(client, name, object_type, found, deadline)?, None));
        }
    };
    let objects: Vec<ObjectInfo> = object
        .into_iter()
        .filter(|o| o.is_named(name))
        .filter(|o| object_type.is_none_or(|t| o.object_type.is_none_or(|got| got == t)))
        .collect();
    Ok((
        Look {
            objects,
            server: found.server,
            now: found.now,
        },
        got,
    ))
}

/// How a race ended for the process that made `uid`.
#[derive(Debug)]
pub enum Settled {
    /// Its object is the one: activate it before `activate_by`.
    Won { activate_by: Instant },
    /// Another object is; its own must be destroyed unread.
    Lost { winner: ObjectInfo },
}

/// Steps 1 to 3 of the module doc for object `uid`, just made on `server` (Pre-Active) and
/// answered at `made_at`.
pub fn settle(
    client: &KmipClient,
    name: &str,
    object_type: Option<u32>,
    uid: &str,
    server: &str,
    made_at: Instant,
    deadline: Instant,
) -> Result<Settled, RaceError> {
    if unique_names::refuses(client, server) {
        // No wait and no look (see "Servers that keep names unique" in the module doc).
        return Ok(Settled::Won {
            activate_by: Instant::now() + ACTIVATE_GRACE,
        });
    }
    let (date, now) = wait_past(client, uid, server, made_at, deadline)?;
    let waited = Instant::now();
    if let (Some(date), Some(now)) = (date, now) {
        if now.saturating_sub(date) > ACTIVATE_WITHIN {
            return Err(RaceError::Other(format!(
                "the new object {uid} named {name} could not be checked against others made at the same time within {ACTIVATE_WITHIN} s of its creation; it was not used, try again"
            )));
        }
    }
    let mut seen = look(client, name, object_type, Some(server), deadline)?;
    // The server's clock at the look is at least what the wait saw.
    seen.now = seen.now.max(now);
    let Some(own) = seen.objects.iter().find(|o| o.uid == uid) else {
        return Err(RaceError::Other(format!(
            "the new object {uid} named {name} disappeared from KMIP server {server} before it was activated (destroyed by another client?); try again"
        )));
    };
    if own.state != Some(tags::state::PRE_ACTIVE) {
        return Err(RaceError::Other(format!(
            "the new object {uid} named {name} is {} before it was activated (changed by another client?); it was not used, try again",
            own.state
                .map_or("in no state".into(), |s| tags::name_of_state(s)
                    .into_owned())
        )));
    }
    let winner = seen.winner().cloned().unwrap_or_else(|| own.clone());
    if winner.uid == uid {
        Ok(Settled::Won {
            activate_by: waited + ACTIVATE_GRACE,
        })
    } else {
        tracing::info!(
            "another client made an object named {name} at the same time ({} of KMIP server {server}); using it and destroying ours ({uid})",
            winner.uid
        );
        Ok(Settled::Lost { winner })
    }
}

/// Step 1: waits until the server's clock is a whole second past the Initial Date of `uid`.
/// Returns that date and the server's clock at the end.
fn wait_past(
    client: &KmipClient,
    uid: &str,
    server: &str,
    made_at: Instant,
    deadline: Instant,
) -> Result<(Option<i64>, Option<i64>), RaceError> {
    let mut trust_estimate = true;
    // The object's date is at most what the server's clock read when the Create was answered.
    // When this host knows that clock well, it sleeps until the clock is surely past that
    // before it asks, so that one question usually ends the wait.
    let made_host = server_clock::host_now() - made_at.elapsed().as_secs_f64();
    if let Some(latest) = server_clock::latest_at(server, made_host, CLOCK_KNOWN_WITHIN) {
        if let Some(left) = server_clock::until(server, latest + 1) {
            let pause = (left + CLOCK_MARGIN).min(FALLBACK_WAIT);
            if Instant::now() + pause < deadline {
                std::thread::sleep(pause);
            }
        }
    }
    loop {
        let request = [ops::get_attributes(
            uid,
            &[tags::attr::INITIAL_DATE, tags::attr::STATE],
        )];
        let sent = server_clock::host_now();
        let answer = client.request_batch_on(server, &request, Retry::Idempotent)?;
        if let Some(stamp) = answer.time_stamp {
            server_clock::record(&answer.server, stamp, sent, server_clock::host_now());
        }
        let failed = |source: kmip::KmipError| {
            RaceError::Client(ClientError::Server {
                server: answer.server.clone(),
                source,
            })
        };
        let attributes = match answer.items.into_iter().next().flatten() {
            Some(Ok(payload)) if ops::parse_uid_echo(&payload).is_some_and(|e| e != uid) => {
                return Err(failed(kmip::KmipError::Malformed(format!(
                    "Get Attributes of {uid} answered for another object"
                ))));
            }
            Some(Ok(payload)) => ops::parse_get_attributes(&payload).map_err(failed)?,
            Some(Err(e)) => return Err(failed(e)),
            None => {
                return Err(failed(kmip::KmipError::Malformed(
                    "the request went unanswered".into(),
                )));
            }
        };
        let date = ops::attr_initial_date(&attributes);
        let mut pause = POLL;
        match (date, answer.time_stamp) {
            (Some(date), Some(now)) if now > date => return Ok((Some(date), Some(now))),
            (Some(date), Some(_)) => {
                // Asked again when the server's clock may have turned (`server_clock`): in the
                // middle of the moments it can turn at while those span more than
                // `NARROW_ENOUGH` (each answer that it has not turned yet narrows them; a
                // process that has not learned the clock yet would otherwise sleep a whole
                // second), then once it has surely turned, a few milliseconds late rather than
                // early. If it had not turned when the estimate said it surely would, the
                // estimate is not trusted again in this wait.
                let estimate = server_clock::window(server, date + 1).filter(|_| trust_estimate);
                if let Some((earliest, latest)) = estimate {
                    let next = if latest.saturating_sub(earliest) > NARROW_ENOUGH {
                        earliest + (latest - earliest) / 2
                    } else {
                        latest + CLOCK_MARGIN
                    };
                    pause = next.clamp(MIN_PAUSE, FALLBACK_WAIT);
                    trust_estimate = latest > Duration::ZERO;
                }
            }
            (date, now) if made_at.elapsed() >= FALLBACK_WAIT => return Ok((date, now)),
            _ => {}
        }
        if Instant::now() + pause >= deadline {
            return Err(RaceError::Other(format!(
                "the clock of KMIP server {server} did not pass the creation date of the new object {uid}; it was not used"
            )));
        }
        std::thread::sleep(pause);
    }
}

/// Waits until object `uid` of `server` (another client's winner) is Active. False when it was
/// destroyed or revoked instead (its maker failed).
pub fn wait_active(
    client: &KmipClient,
    uid: &str,
    server: &str,
    deadline: Instant,
) -> Result<bool, RaceError> {
    loop {
        let state = match client.request_on(
            server,
            &ops::get_attributes(uid, &[tags::attr::STATE]),
            Retry::Idempotent,
            ops::parse_get_attributes,
        ) {
            Ok(attributes) => ops::attr_state(&attributes),
            Err(ClientError::Server { source, .. }) if source.is_absent() => None,
            Err(e) => return Err(e.into()),
        };
        match state {
            Some(tags::state::ACTIVE) => return Ok(true),
            Some(tags::state::PRE_ACTIVE) => {}
            _ => return Ok(false),
        }
        if Instant::now() + POLL >= deadline {
            return Err(RaceError::Other(format!(
                "object {uid} of KMIP server {server}, made at the same time by another client, was not activated in time; try again"
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Activates our new object `uid` of `server`, the winner of its name. If the Activate fails
/// (or its answer is lost), the object's state decides: Active means it was activated (others
/// may already use it, so it is never destroyed then); Pre-Active or gone means it was not, and
/// it is destroyed; a state that cannot be read twice means it may be Active, so it is revoked
/// before it is destroyed, leaving no Active orphan. Returns the Activate's error in the last
/// two cases.
pub fn activate_or_discard(
    client: &KmipClient,
    uid: &str,
    server: &str,
) -> Result<(), ClientError> {
    let Err(e) = client.request_on(server, &ops::activate(uid), Retry::Never, |_| Ok(())) else {
        return Ok(());
    };
    for _ in 0..2 {
        let state = client.request_on(
            server,
            &ops::get_attributes(uid, &[tags::attr::STATE]),
            Retry::Idempotent,
            ops::parse_get_attributes,
        );
        match state {
            Ok(attributes) => {
                if ops::attr_state(&attributes) == Some(tags::state::ACTIVE) {
                    return Ok(());
                }
                // Not activated: nobody can have read it.
                if let Err(cleanup) =
                    client.request_on(server, &ops::destroy(uid), Retry::Never, |_| Ok(()))
                {
                    tracing::warn!(
                        "could not destroy the unactivated KMIP object {uid} of {server}: {cleanup}; destroy it on the KMIP server"
                    );
                }
                return Err(e);
            }
            Err(ClientError::Server { source, .. }) if source.is_absent() => return Err(e),
            Err(_) => {}
        }
    }
    revoke_and_destroy(client, uid, server, "its activation failed");
    Err(e)
}

/// Revokes (if it may be Active) and destroys object `uid` of `server`, on a best-effort basis:
/// a failure is logged. Used on our own new objects only.
pub fn discard(client: &KmipClient, uid: &str, server: &str, why: &str) {
    let state = client
        .request_on(
            server,
            &ops::get_attributes(uid, &[tags::attr::STATE]),
            Retry::Idempotent,
            ops::parse_get_attributes,
        )
        .map(|a| ops::attr_state(&a));
    let state = match state {
        Ok(state) => state,
        Err(ClientError::Server { source, .. }) if source.is_absent() => return,
        // Unknown: it may be Active, so revoke first.
        Err(_) => Some(tags::state::ACTIVE),
    };
    if matches!(
        state,
        None | Some(tags::state::DESTROYED | tags::state::DESTROYED_COMPROMISED)
    ) {
        return;
    }
    if state == Some(tags::state::ACTIVE) {
        revoke_and_destroy(client, uid, server, why);
    } else {
        destroy(client, uid, server, why);
    }
}

fn revoke_and_destroy(client: &KmipClient, uid: &str, server: &str, why: &str) {
    let revoke = ops::revoke(uid, ops::DEFAULT_REVOCATION_REASON);
    if let Err(e) = client.request_on(server, &revoke, Retry::Never, |_| Ok(())) {
        tracing::debug!("revoking {uid} ({why}): {e}");
    }
    destroy(client, uid, server, why);
}

fn destroy(client: &KmipClient, uid: &str, server: &str, why: &str) {
    match client.request_on(server, &ops::destroy(uid), Retry::Never, |_| Ok(())) {
        Ok(()) => {}
        Err(ClientError::Server { source, .. }) if source.is_absent() => {}
        Err(e) => tracing::warn!(
            "could not destroy the new KMIP object {uid} of {server} ({why}): {e}; destroy it on the KMIP server"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(uid: &str, state: u32, date: i64) -> ObjectInfo {
        ObjectInfo {
            uid: uid.into(),
            names: vec!["n".into()],
            state: Some(state),
            initial_date: Some(date),
            ..ObjectInfo::default()
        }
    }

    fn winner(objects: Vec<ObjectInfo>, now: i64) -> Option<String> {
        Look {
            objects,
            server: "s".into(),
            now: Some(now),
        }
        .winner()
        .map(|o| o.uid.clone())
    }

    use tags::state::{ACTIVE, DEACTIVATED, DESTROYED, PRE_ACTIVE};

    #[test]
    fn uid_order_is_numeric_for_numbers() {
        let mut uids = vec!["10", "9", "100", "2"];
        uids.sort_by(|a, b| uid_order(a, b));
        assert_eq!(uids, ["2", "9", "10", "100"]);
    }

    #[test]
    fn the_earliest_date_wins_then_the_identifier() {
        let objects = vec![
            object("b7f0", PRE_ACTIVE, 100),
            object("0c21", PRE_ACTIVE, 101),
        ];
        assert_eq!(winner(objects, 102).as_deref(), Some("b7f0"));
        // The same second: the identifier decides, the same for everyone.
        let objects = vec![object("b7f0", PRE_ACTIVE, 100), object("0c21", ACTIVE, 100)];
        assert_eq!(winner(objects, 102).as_deref(), Some("0c21"));
        // Numeric identifiers by value.
        let objects = vec![object("10", ACTIVE, 100), object("9", PRE_ACTIVE, 100)];
        assert_eq!(winner(objects, 102).as_deref(), Some("9"));
    }

    #[test]
    fn revoked_destroyed_and_leftover_objects_never_win() {
        let objects = vec![
            object("1", DEACTIVATED, 10),
            object("2", DESTROYED, 10),
            object("3", PRE_ACTIVE, 20),
            object("4", PRE_ACTIVE, 1000),
        ];
        assert_eq!(winner(objects.clone(), 1001).as_deref(), Some("4"));
        // Not yet a leftover: still a contender.
        assert_eq!(winner(objects, 20 + LEFTOVER_AGE - 1).as_deref(), Some("3"));
        // An old Active object is the key, however old.
        let objects = vec![object("7", ACTIVE, 10), object("4", PRE_ACTIVE, 1000)];
        assert_eq!(winner(objects, 1001).as_deref(), Some("7"));
    }

    #[test]
    fn objects_without_a_date_come_last() {
        let mut undated = object("1", ACTIVE, 0);
        undated.initial_date = None;
        let objects = vec![undated, object("2", PRE_ACTIVE, 50)];
        assert_eq!(winner(objects, 51).as_deref(), Some("2"));
    }
}
