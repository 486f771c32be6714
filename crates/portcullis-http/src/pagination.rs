//! authentik's list envelope: `{"pagination": {...}, "results": [...], "autocomplete": {}}`,
//! with `next`/`previous` as page numbers and 0 for none.

use portcullis_core::{Ordering, PageRequest};
use portcullis_store::ListQuery;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::QueryParams;

pub const DEFAULT_PAGE_SIZE: u64 = 100;
pub const MAX_PAGE_SIZE: u64 = 1000;

#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct Pagination {
    pub next: u64,
    pub previous: u64,
    pub count: u64,
    pub current: u64,
    pub total_pages: u64,
    pub start_index: u64,
    pub end_index: u64,
}

impl Pagination {
    pub fn new(page: &PageRequest, count: u64, on_page: u64) -> Self {
        let size = page.page_size.max(1);
        let total_pages = count.div_ceil(size).max(1);
        let current = page.page;
        let start_index = if on_page == 0 {
            0
        } else {
            (current - 1) * size + 1
        };
        let end_index = if on_page == 0 {
            0
        } else {
            start_index + on_page - 1
        };
        Self {
            next: if current < total_pages {
                current + 1
            } else {
                0
            },
            previous: current.saturating_sub(1),
            count,
            current,
            total_pages,
            start_index,
            end_index,
        }
    }
}

/// Page, page size, ordering and search from the query string. A page past the end is a 404
/// like DRF's ("Invalid page."); a page size over the maximum is clamped.
pub fn list_query(q: &QueryParams) -> Result<ListQuery, ApiError> {
    let page: u64 = q.int("page")?.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::NotFound);
    }
    let page_size: u64 = q
        .int("page_size")?
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let search = q.string("search").filter(|s| !s.is_empty());
    if search.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(ApiError::field(
            "search",
            "Ensure this field has no more than 1024 characters.",
        ));
    }
    Ok(ListQuery {
        page: PageRequest { page, page_size },
        ordering: q.get("ordering").map(Ordering::parse).unwrap_or_default(),
        search,
    })
}

/// Rejects pages past the last one (an empty first page is fine).
pub fn check_page(page: &PageRequest, count: u64) -> Result<(), ApiError> {
    if page.page > 1 && (page.page - 1).saturating_mul(page.page_size) >= count {
        return Err(ApiError::BadRequest("Invalid page.".into()).into_not_found());
    }
    Ok(())
}

impl ApiError {
    fn into_not_found(self) -> ApiError {
        ApiError::NotFound
    }
}

/// Declares a concrete paginated list type with authentik's name, for the schema.
#[macro_export]
macro_rules! paginated {
    ($name:ident, $item:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub pagination: $crate::pagination::Pagination,
            pub results: Vec<$item>,
            pub autocomplete: serde_json::Value,
        }

        impl $name {
            pub fn new(
                page: &portcullis_core::PageRequest,
                count: u64,
                results: Vec<$item>,
            ) -> Self {
                let pagination =
                    $crate::pagination::Pagination::new(page, count, results.len() as u64);
                Self {
                    pagination,
                    results,
                    autocomplete: serde_json::json!({}),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_numbers() {
        let p = Pagination::new(
            &PageRequest {
                page: 2,
                page_size: 10,
            },
            25,
            10,
        );
        assert_eq!(
            (
                p.next,
                p.previous,
                p.total_pages,
                p.start_index,
                p.end_index
            ),
            (3, 1, 3, 11, 20)
        );
        let empty = Pagination::new(
            &PageRequest {
                page: 1,
                page_size: 10,
            },
            0,
            0,
        );
        assert_eq!(
            (
                empty.next,
                empty.previous,
                empty.total_pages,
                empty.start_index,
                empty.end_index
            ),
            (0, 0, 1, 0, 0)
        );
        let last = Pagination::new(
            &PageRequest {
                page: 3,
                page_size: 10,
            },
            25,
            5,
        );
        assert_eq!((last.next, last.start_index, last.end_index), (0, 21, 25));
    }
}
