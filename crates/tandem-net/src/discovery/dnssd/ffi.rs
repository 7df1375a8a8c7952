//! The `dns_sd.h` calls, and nothing else: a table of the seven functions the backend uses,
//! an owned `DNSServiceRef` that deallocates itself, and the C callbacks, which copy their
//! arguments into [`Reply`] values and return. Every decision about those values is made in
//! plain Rust in the parent module, where it is tested without a daemon.
//!
//! Outside Apple the table is filled from Avahi's compatibility library, opened at run time
//! so that the crate builds and runs (with [`MdnsSd`](super::super::MdnsSd) only) where it
//! is not installed. On Apple the same functions are linked from libSystem.
#![allow(unsafe_code)] // the dns_sd.h API is C

use std::cell::Cell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{self, NonNull};

use super::{Reply, address_from_rdata};

/// `DNSServiceRef`: an opaque handle owned by the library.
type RawRef = *mut c_void;

type RegisterReply = unsafe extern "C" fn(
    RawRef,
    u32,
    i32,
    *const c_char,
    *const c_char,
    *const c_char,
    *mut c_void,
);
type BrowseReply = unsafe extern "C" fn(
    RawRef,
    u32,
    u32,
    i32,
    *const c_char,
    *const c_char,
    *const c_char,
    *mut c_void,
);
type ResolveReply = unsafe extern "C" fn(
    RawRef,
    u32,
    u32,
    i32,
    *const c_char,
    *const c_char,
    u16,
    u16,
    *const u8,
    *mut c_void,
);
type QueryReply = unsafe extern "C" fn(
    RawRef,
    u32,
    u32,
    i32,
    *const c_char,
    u16,
    u16,
    u16,
    *const c_void,
    u32,
    *mut c_void,
);

type RegisterFn = unsafe extern "C" fn(
    *mut RawRef,
    u32,
    u32,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    u16,
    u16,
    *const c_void,
    Option<RegisterReply>,
    *mut c_void,
) -> i32;
type BrowseFn = unsafe extern "C" fn(
    *mut RawRef,
    u32,
    u32,
    *const c_char,
    *const c_char,
    Option<BrowseReply>,
    *mut c_void,
) -> i32;
type ResolveFn = unsafe extern "C" fn(
    *mut RawRef,
    u32,
    u32,
    *const c_char,
    *const c_char,
    *const c_char,
    Option<ResolveReply>,
    *mut c_void,
) -> i32;
type QueryRecordFn = unsafe extern "C" fn(
    *mut RawRef,
    u32,
    u32,
    *const c_char,
    u16,
    u16,
    Option<QueryReply>,
    *mut c_void,
) -> i32;
type SockFdFn = unsafe extern "C" fn(RawRef) -> c_int;
type ProcessResultFn = unsafe extern "C" fn(RawRef) -> i32;
type DeallocateFn = unsafe extern "C" fn(RawRef);

/// The functions the backend calls, however they were found.
#[derive(Debug)]
pub(super) struct Api {
    register: RegisterFn,
    browse: BrowseFn,
    resolve: ResolveFn,
    query_record: QueryRecordFn,
    sock_fd: SockFdFn,
    process_result: ProcessResultFn,
    deallocate: DeallocateFn,
}

/// `kDNSServiceErr_BadReference`, for a ref the library hands back without a socket.
const ERR_BAD_REFERENCE: i32 = -65541;
/// `kDNSServiceClass_IN`.
const CLASS_IN: u16 = 1;

#[cfg(all(unix, not(target_vendor = "apple")))]
mod load {
    use std::sync::OnceLock;

    use libloading::Library;

    use super::Api;

    /// Avahi's soname; the unversioned `libdns_sd.so` comes only with the -dev package.
    const LIBRARY: &str = "libdns_sd.so.1";

    /// The library stays open for the life of the process, so the pointers in the table
    /// stay valid.
    static LOADED: OnceLock<Result<(Library, Api), String>> = OnceLock::new();

    pub(in super::super) fn api() -> Result<&'static Api, String> {
        match LOADED.get_or_init(|| open(LIBRARY)) {
            Ok((_, api)) => Ok(api),
            Err(e) => Err(e.clone()),
        }
    }

    /// Opens `soname` and reads the table from it.
    pub(super) fn open(soname: &str) -> Result<(Library, Api), String> {
        // SAFETY: opening runs the library's initialisers; Avahi's compatibility library
        // has none beyond the C runtime's.
        let lib = unsafe { Library::new(soname) }.map_err(|e| {
            tracing::debug!(%e, "opening {soname}");
            format!("{soname} not found (Debian/Ubuntu: apt-get install libavahi-compat-libdnssd1)")
        })?;
        macro_rules! symbol {
            ($name:literal) => {
                // SAFETY: the type each symbol is read as is its prototype in dns_sd.h, and
                // the pointer is used only while `lib` is open (forever, see LOADED).
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{soname} lacks {}: {e}", $name))?
            };
        }
        let api = Api {
            register: symbol!("DNSServiceRegister"),
            browse: symbol!("DNSServiceBrowse"),
            resolve: symbol!("DNSServiceResolve"),
            query_record: symbol!("DNSServiceQueryRecord"),
            sock_fd: symbol!("DNSServiceRefSockFD"),
            process_result: symbol!("DNSServiceProcessResult"),
            deallocate: symbol!("DNSServiceRefDeallocate"),
        };
        Ok((lib, api))
    }
}

#[cfg(target_vendor = "apple")]
mod load {
    use super::*;

    // libSystem (linked into every Apple binary) exports the dns_sd.h API.
    unsafe extern "C" {
        fn DNSServiceRegister(
            r: *mut RawRef,
            flags: u32,
            interface: u32,
            name: *const c_char,
            regtype: *const c_char,
            domain: *const c_char,
            host: *const c_char,
            port: u16,
            txt_len: u16,
            txt: *const c_void,
            reply: Option<RegisterReply>,
            context: *mut c_void,
        ) -> i32;
        fn DNSServiceBrowse(
            r: *mut RawRef,
            flags: u32,
            interface: u32,
            regtype: *const c_char,
            domain: *const c_char,
            reply: Option<BrowseReply>,
            context: *mut c_void,
        ) -> i32;
        fn DNSServiceResolve(
            r: *mut RawRef,
            flags: u32,
            interface: u32,
            name: *const c_char,
            regtype: *const c_char,
            domain: *const c_char,
            reply: Option<ResolveReply>,
            context: *mut c_void,
        ) -> i32;
        fn DNSServiceQueryRecord(
            r: *mut RawRef,
            flags: u32,
            interface: u32,
            fullname: *const c_char,
            rrtype: u16,
            rrclass: u16,
            reply: Option<QueryReply>,
            context: *mut c_void,
        ) -> i32;
        fn DNSServiceRefSockFD(r: RawRef) -> c_int;
        fn DNSServiceProcessResult(r: RawRef) -> i32;
        fn DNSServiceRefDeallocate(r: RawRef);
    }

    static API: Api = Api {
        register: DNSServiceRegister,
        browse: DNSServiceBrowse,
        resolve: DNSServiceResolve,
        query_record: DNSServiceQueryRecord,
        sock_fd: DNSServiceRefSockFD,
        process_result: DNSServiceProcessResult,
        deallocate: DNSServiceRefDeallocate,
    };

    pub(in super::super) fn api() -> Result<&'static Api, String> {
        Ok(&API)
    }
}

pub(super) use load::api;

/// Where a ref's callbacks leave their replies until [`Op::process`] collects them. A
/// `Cell` because the callbacks run inside `DNSServiceProcessResult` on the owning thread
/// and must not be able to panic.
#[derive(Default)]
struct Slot {
    replies: Cell<Vec<Reply>>,
}

impl Slot {
    fn push(&self, reply: Reply) {
        let mut v = self.replies.take();
        v.push(reply);
        self.replies.set(v);
    }
}

/// One live request (register, browse, resolve or query) and the slot its callbacks fill.
/// Not `Send`: a `DNSServiceRef` is used by the thread that made it and no other.
pub(super) struct Op {
    api: &'static Api,
    raw: NonNull<c_void>,
    // Boxed so its address, given to the library as the callback context, never moves;
    // dropped after `raw` is deallocated (see Drop), so no callback can outlive it.
    slot: Box<Slot>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op").field("raw", &self.raw).finish()
    }
}

impl Op {
    /// Runs one of the create calls with a fresh slot as context.
    fn start(
        api: &'static Api,
        create: impl FnOnce(*mut RawRef, *mut c_void) -> i32,
    ) -> Result<Op, i32> {
        let slot = Box::new(Slot::default());
        let context = ptr::from_ref::<Slot>(&slot).cast_mut().cast::<c_void>();
        let mut raw: RawRef = ptr::null_mut();
        let code = create(&mut raw, context);
        if code != 0 {
            return Err(code);
        }
        let raw = NonNull::new(raw).ok_or(ERR_BAD_REFERENCE)?;
        let op = Op { api, raw, slot };
        if op.raw_fd() < 0 {
            return Err(ERR_BAD_REFERENCE);
        }
        Ok(op)
    }

    /// `DNSServiceRegister` of `name` (`regtype` in the default domain, this host's name),
    /// with `port` in host order and `txt` in wire format.
    pub(super) fn register(
        api: &'static Api,
        flags: u32,
        interface: u32,
        name: &CStr,
        regtype: &CStr,
        port: u16,
        txt: &[u8],
    ) -> Result<Op, i32> {
        let txt_len = u16::try_from(txt.len()).map_err(|_| super::ERR_BAD_PARAM)?;
        Op::start(api, |out, context| {
            // SAFETY: `out` is writable; the strings are NUL-terminated and outlive the call
            // (the library copies them); `txt` is `txt_len` readable bytes; the callback has
            // the prototype dns_sd.h gives; `context` is a live Slot (see Op::slot).
            unsafe {
                (api.register)(
                    out,
                    flags,
                    interface,
                    name.as_ptr(),
                    regtype.as_ptr(),
                    ptr::null(),
                    ptr::null(),
                    port.to_be(),
                    txt_len,
                    txt.as_ptr().cast(),
                    Some(register_reply),
                    context,
                )
            }
        })
    }

    /// `DNSServiceBrowse` for `regtype` in the default domains.
    pub(super) fn browse(
        api: &'static Api,
        flags: u32,
        interface: u32,
        regtype: &CStr,
    ) -> Result<Op, i32> {
        Op::start(api, |out, context| {
            // SAFETY: as in `register`.
            unsafe {
                (api.browse)(
                    out,
                    flags,
                    interface,
                    regtype.as_ptr(),
                    ptr::null(),
                    Some(browse_reply),
                    context,
                )
            }
        })
    }

    /// `DNSServiceResolve` of one browsed instance on one interface.
    pub(super) fn resolve(
        api: &'static Api,
        flags: u32,
        interface: u32,
        name: &CStr,
        regtype: &CStr,
        domain: &CStr,
    ) -> Result<Op, i32> {
        Op::start(api, |out, context| {
            // SAFETY: as in `register`.
            unsafe {
                (api.resolve)(
                    out,
                    flags,
                    interface,
                    name.as_ptr(),
                    regtype.as_ptr(),
                    domain.as_ptr(),
                    Some(resolve_reply),
                    context,
                )
            }
        })
    }

    /// `DNSServiceQueryRecord` of `rrtype` (class IN) for `fullname` on one interface.
    pub(super) fn query(
        api: &'static Api,
        flags: u32,
        interface: u32,
        fullname: &CStr,
        rrtype: u16,
    ) -> Result<Op, i32> {
        Op::start(api, |out, context| {
            // SAFETY: as in `register`.
            unsafe {
                (api.query_record)(
                    out,
                    flags,
                    interface,
                    fullname.as_ptr(),
                    rrtype,
                    CLASS_IN,
                    Some(query_reply),
                    context,
                )
            }
        })
    }

    fn raw_fd(&self) -> c_int {
        // SAFETY: `raw` is a live ref (deallocated only in Drop).
        unsafe { (self.api.sock_fd)(self.raw.as_ptr()) }
    }

    /// The socket that becomes readable when the library has replies for this request.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the library owns the descriptor and keeps it open until the ref is
        // deallocated, which the borrow of `self` rules out; `start` checked it is valid.
        unsafe { BorrowedFd::borrow_raw(self.raw_fd()) }
    }

    /// Runs the callbacks for what has arrived (call only once [`Op::fd`] is readable, or
    /// it blocks) and returns what they reported.
    pub(super) fn process(&self) -> Result<Vec<Reply>, i32> {
        // SAFETY: a live ref, used only from this thread (Op is not Send); the callbacks it
        // runs write only to `self.slot`, which is alive.
        let code = unsafe { (self.api.process_result)(self.raw.as_ptr()) };
        let replies = self.slot.replies.take();
        if code == 0 { Ok(replies) } else { Err(code) }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        // SAFETY: a live ref, deallocated once; afterwards the library calls no callback,
        // so the slot (dropped after this) is not used again.
        unsafe { (self.api.deallocate)(self.raw.as_ptr()) }
    }
}

/// The slot behind a callback's context pointer.
///
/// # Safety
/// `context` must be the pointer [`Op::start`] passed, whose Op is alive: the library only
/// calls back from `DNSServiceProcessResult` or the create call, both while it is.
unsafe fn slot<'a>(context: *mut c_void) -> Option<&'a Slot> {
    // SAFETY: per this function's contract, a live Slot or null.
    unsafe { context.cast::<Slot>().as_ref() }
}

/// A C string argument as UTF-8; `None` (logged) when null or not UTF-8, which no caller
/// of ours can use.
///
/// # Safety
/// `s` is null or a NUL-terminated string valid for the duration of the callback.
unsafe fn text(s: *const c_char, what: &str) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: per this function's contract.
    let c = unsafe { CStr::from_ptr(s) };
    match c.to_str() {
        Ok(t) => Some(t.to_owned()),
        Err(_) => {
            tracing::debug!(bytes = ?c.to_bytes(), "dns-sd: skipping a {what} that is not UTF-8");
            None
        }
    }
}

/// Runs a callback body so that a panic (in a tracing subscriber, say) is logged instead
/// of unwinding into C.
fn guarded(body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        tracing::error!("dns-sd: a callback panicked; its reply is lost");
    }
}

unsafe extern "C" fn register_reply(
    _r: RawRef,
    _flags: u32,
    error: i32,
    name: *const c_char,
    _regtype: *const c_char,
    _domain: *const c_char,
    context: *mut c_void,
) {
    guarded(|| {
        // SAFETY: the library passes back our context and strings valid for this call.
        let (Some(slot), name) = (unsafe { slot(context) }, unsafe { text(name, "name") }) else {
            return;
        };
        slot.push(match (error, name) {
            (0, Some(name)) => Reply::Registered { name },
            (0, None) => return,
            (code, _) => Reply::Failed(code),
        });
    });
}

unsafe extern "C" fn browse_reply(
    _r: RawRef,
    flags: u32,
    interface: u32,
    error: i32,
    name: *const c_char,
    _regtype: *const c_char,
    domain: *const c_char,
    context: *mut c_void,
) {
    guarded(|| {
        // SAFETY: the library passes back our context.
        let Some(slot) = (unsafe { slot(context) }) else {
            return;
        };
        if error != 0 {
            slot.push(Reply::Failed(error));
            return;
        }
        // SAFETY: strings valid for this call.
        let (Some(instance), Some(domain)) = (unsafe { text(name, "service name") }, unsafe {
            text(domain, "domain")
        }) else {
            return;
        };
        slot.push(Reply::Browse {
            add: flags & super::FLAGS_ADD != 0,
            interface,
            instance,
            domain,
        });
    });
}

unsafe extern "C" fn resolve_reply(
    _r: RawRef,
    _flags: u32,
    interface: u32,
    error: i32,
    _fullname: *const c_char,
    host: *const c_char,
    port: u16,
    txt_len: u16,
    txt: *const u8,
    context: *mut c_void,
) {
    guarded(|| {
        // SAFETY: the library passes back our context.
        let Some(slot) = (unsafe { slot(context) }) else {
            return;
        };
        if error != 0 {
            slot.push(Reply::Failed(error));
            return;
        }
        // SAFETY: a string valid for this call.
        let Some(host) = (unsafe { text(host, "host name") }) else {
            return;
        };
        let txt = if txt.is_null() || txt_len == 0 {
            Vec::new()
        } else {
            // SAFETY: the library passes `txt_len` readable bytes at `txt`.
            unsafe { std::slice::from_raw_parts(txt, usize::from(txt_len)) }.to_vec()
        };
        slot.push(Reply::Resolved {
            interface,
            host,
            port: u16::from_be(port),
            txt,
        });
    });
}

unsafe extern "C" fn query_reply(
    _r: RawRef,
    flags: u32,
    interface: u32,
    error: i32,
    _fullname: *const c_char,
    rrtype: u16,
    _rrclass: u16,
    rdlen: u16,
    rdata: *const c_void,
    _ttl: u32,
    context: *mut c_void,
) {
    guarded(|| {
        // SAFETY: the library passes back our context.
        let Some(slot) = (unsafe { slot(context) }) else {
            return;
        };
        if error != 0 {
            slot.push(Reply::Failed(error));
            return;
        }
        if rdata.is_null() {
            return;
        }
        // SAFETY: the library passes `rdlen` readable bytes at `rdata`.
        let rdata = unsafe { std::slice::from_raw_parts(rdata.cast::<u8>(), usize::from(rdlen)) };
        let Some(ip): Option<IpAddr> = address_from_rdata(rrtype, rdata) else {
            tracing::debug!(
                rrtype,
                rdlen,
                "dns-sd: skipping an address record of the wrong size"
            );
            return;
        };
        slot.push(Reply::Address {
            add: flags & super::FLAGS_ADD != 0,
            interface,
            ip,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(slot: &Slot) -> *mut c_void {
        ptr::from_ref(slot).cast_mut().cast()
    }

    #[cfg(all(unix, not(target_vendor = "apple")))]
    #[test]
    fn a_missing_library_names_its_package() {
        let e = load::open("libtandem-absent.so.1").expect_err("no such library");
        assert_eq!(
            e,
            "libtandem-absent.so.1 not found (Debian/Ubuntu: apt-get install libavahi-compat-libdnssd1)"
        );
    }

    #[test]
    fn callbacks_copy_their_arguments() {
        let slot = Slot::default();
        let ctx = context(&slot);
        let txt = b"\x03v=1";
        // SAFETY: valid strings, `txt.len()` bytes at `txt`, and a live slot as context.
        unsafe {
            resolve_reply(
                ptr::null_mut(),
                0,
                3,
                0,
                c"Desk._tandem._udp.local.".as_ptr(),
                c"desk.local.".as_ptr(),
                7000u16.to_be(),
                txt.len() as u16,
                txt.as_ptr(),
                ctx,
            );
            browse_reply(
                ptr::null_mut(),
                super::super::FLAGS_ADD | 0x1,
                3,
                0,
                c"Ana's iPad".as_ptr(),
                c"_tandem._udp.".as_ptr(),
                c"local.".as_ptr(),
                ctx,
            );
            browse_reply(
                ptr::null_mut(),
                0,
                3,
                0,
                c"Ana's iPad".as_ptr(),
                c"_tandem._udp.".as_ptr(),
                c"local.".as_ptr(),
                ctx,
            );
            query_reply(
                ptr::null_mut(),
                super::super::FLAGS_ADD,
                3,
                0,
                c"desk.local.".as_ptr(),
                super::super::TYPE_A,
                1,
                4,
                [10u8, 0, 0, 2].as_ptr().cast(),
                120,
                ctx,
            );
            register_reply(
                ptr::null_mut(),
                0,
                0,
                c"Desk (2)".as_ptr(),
                c"_tandem._udp.".as_ptr(),
                c"local.".as_ptr(),
                ctx,
            );
        }
        assert_eq!(
            slot.replies.take(),
            vec![
                Reply::Resolved {
                    interface: 3,
                    host: "desk.local.".into(),
                    port: 7000,
                    txt: txt.to_vec(),
                },
                Reply::Browse {
                    add: true,
                    interface: 3,
                    instance: "Ana's iPad".into(),
                    domain: "local.".into(),
                },
                Reply::Browse {
                    add: false,
                    interface: 3,
                    instance: "Ana's iPad".into(),
                    domain: "local.".into(),
                },
                Reply::Address {
                    add: true,
                    interface: 3,
                    ip: IpAddr::from([10, 0, 0, 2]),
                },
                Reply::Registered {
                    name: "Desk (2)".into()
                },
            ]
        );
    }

    #[test]
    fn callbacks_skip_what_they_cannot_use_and_pass_errors_on() {
        let slot = Slot::default();
        let ctx = context(&slot);
        let not_utf8 = b"caf\xe9\0";
        // SAFETY: valid (if not UTF-8) strings or nulls, and a live slot or null as context.
        unsafe {
            browse_reply(
                ptr::null_mut(),
                super::super::FLAGS_ADD,
                3,
                0,
                not_utf8.as_ptr().cast(),
                c"_tandem._udp.".as_ptr(),
                c"local.".as_ptr(),
                ctx,
            );
            browse_reply(
                ptr::null_mut(),
                0,
                0,
                -65537,
                ptr::null(),
                ptr::null(),
                ptr::null(),
                ctx,
            );
            // An address record of the wrong size, and one with no data.
            query_reply(
                ptr::null_mut(),
                super::super::FLAGS_ADD,
                3,
                0,
                c"h.local.".as_ptr(),
                super::super::TYPE_AAAA,
                1,
                4,
                [1u8, 2, 3, 4].as_ptr().cast(),
                120,
                ctx,
            );
            query_reply(
                ptr::null_mut(),
                0,
                3,
                0,
                c"h.local.".as_ptr(),
                super::super::TYPE_A,
                1,
                0,
                ptr::null(),
                0,
                ctx,
            );
            // A resolve with no TXT record at all, and a reply with no context.
            resolve_reply(
                ptr::null_mut(),
                0,
                2,
                0,
                c"x".as_ptr(),
                c"h.local.".as_ptr(),
                9u16.to_be(),
                0,
                ptr::null(),
                ctx,
            );
            register_reply(
                ptr::null_mut(),
                0,
                0,
                c"n".as_ptr(),
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
            );
        }
        assert_eq!(
            slot.replies.take(),
            vec![
                Reply::Failed(-65537),
                Reply::Resolved {
                    interface: 2,
                    host: "h.local.".into(),
                    port: 9,
                    txt: Vec::new(),
                },
            ]
        );
    }

    #[test]
    fn a_panicking_callback_body_does_not_unwind() {
        guarded(|| panic!("inside a callback"));
    }
}
