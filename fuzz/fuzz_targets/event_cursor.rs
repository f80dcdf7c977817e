//! Cursors come back from clients: any string, with any sort and order, is either a page or an
//! `InvalidArgument` error from the store, never a panic or another kind of error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::{ErrorKind, EventFilter, Order, Query, SortBy};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(cursor) = std::str::from_utf8(rest) else {
        return;
    };
    let mut q = Query::new(EventFilter::default());
    q.sort = [SortBy::Time, SortBy::Score, SortBy::Duration][usize::from(flags % 3)];
    q.order = if flags & 4 == 0 {
        Order::Asc
    } else {
        Order::Desc
    };
    q.page.limit = u32::from(flags >> 3) + 1;
    q.page.cursor = Some(cursor.to_owned());
    let w = vigil_fuzz::world();
    if let Err(e) = w.rt.block_on(w.store.events(&q)) {
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{cursor:?}: {e}");
    }
});
