//! What the library is: the client core's version and the git revision it was built from.

use std::ffi::{CString, c_char};
use std::sync::LazyLock;

static VERSION: LazyLock<CString> = LazyLock::new(|| nul_terminated(rapidmq_core::VERSION));
static GIT_REVISION: LazyLock<CString> =
    LazyLock::new(|| nul_terminated(rapidmq_core::GIT_REVISION));

fn nul_terminated(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// The version of the client core in this library (e.g. "0.1.0"): a static NUL-terminated
/// string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn rapidmq_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The git revision the library was built from (12 hex digits, or "unknown" for a build outside
/// a checkout): a static NUL-terminated string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn rapidmq_git_revision() -> *const c_char {
    GIT_REVISION.as_ptr()
}
