//! What every list takes: a page, an ordering and an optional search string, and the helpers
//! that apply them to a SeaORM select.

use portcullis_core::{Ordering, Page, PageRequest};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryOrder,
    QuerySelect, Select,
    sea_query::{Expr, Func},
};

use crate::StoreError;

/// The most rows one page may hold, whatever was asked.
pub const MAX_PAGE_SIZE: u64 = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub page: PageRequest,
    pub ordering: Ordering,
    pub search: Option<String>,
}

/// Orders by the column `ordering` names among `allowed`, else by `default`; always breaks ties
/// by `tiebreak` so pages are stable.
pub(crate) fn ordered<E: EntityTrait, C: ColumnTrait>(
    select: Select<E>,
    ordering: &Ordering,
    allowed: &[(&str, C)],
    default: (C, bool),
    tiebreak: C,
) -> Select<E> {
    let chosen = ordering
        .field
        .as_deref()
        .and_then(|f| allowed.iter().find(|(name, _)| *name == f))
        .map(|(_, c)| (*c, ordering.descending));
    let (col, desc) = chosen.unwrap_or(default);
    let dir = |d: bool| if d { Order::Desc } else { Order::Asc };
    select
        .order_by(col, dir(desc))
        .order_by(tiebreak, dir(desc))
}

/// A case-insensitive "contains" over several columns, the same on both databases.
pub(crate) fn search_condition<C: ColumnTrait>(term: &str, cols: &[C]) -> Condition {
    let escaped = term
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = format!("%{escaped}%");
    let mut cond = Condition::any();
    for c in cols {
        cond = cond.add(
            Expr::expr(Func::lower(Expr::col(c.as_column_ref())))
                .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
        );
    }
    cond
}

/// Counts the rows of `select`, then fetches the requested page.
pub(crate) async fn paged<E, C>(
    db: &C,
    select: Select<E>,
    page: &PageRequest,
) -> Result<Page<E::Model>, StoreError>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let count = select.clone().count(db).await?;
    let size = page.page_size.clamp(1, MAX_PAGE_SIZE);
    let offset = page.page.saturating_sub(1).saturating_mul(size);
    // Both databases take a signed 64-bit OFFSET (the driver panics on more); a page that far
    // out is past the end of any table.
    if offset >= count || i64::try_from(offset).is_err() {
        return Ok(Page {
            items: Vec::new(),
            count,
        });
    }
    let items = select.offset(offset).limit(size).all(db).await?;
    Ok(Page { items, count })
}
