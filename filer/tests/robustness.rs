//! Paths from requests never panic the filer's path handling, and what it accepts is
//! normalized: no `.` or `..` component, no empty component, absolute.

use kelp_filer::path;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn normalize_any_path(p in "(/|\\.|\\.\\.|a|é|\\x00|b/){0,12}") {
        if let Ok(n) = path::normalize(&p) {
            prop_assert!(n.starts_with('/'));
            prop_assert!(path::is_normalized(&n), "{n:?}");
            if n != "/" {
                for c in n[1..].split('/') {
                    prop_assert!(!c.is_empty() && c != "." && c != "..", "{n:?}");
                }
            }
            prop_assert!(!n.contains('\0'));
        }
    }

    #[test]
    fn normalize_arbitrary_strings(p in ".{0,300}") {
        let _ = path::normalize(&p);
        let _ = path::is_normalized(&p);
    }
}
