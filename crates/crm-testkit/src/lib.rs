//! # crm-testkit
//!
//! What every storage adapter of `crm-core` is tested with:
//!
//! - [`conformance`]: the conformance suite, one public async function per case, in one
//!   file per group of ports ([`GROUPS`]: customers, interactions, profiles, values,
//!   segments, outbox, cases, tasks, kpi, staff, access, sales, and the cases across every
//!   port), and
//!   [`conformance_tests!`] to turn all of them, or the groups an adapter supports, into
//!   one named `#[test]` each;
//! - [`MemoryStore`]: the in-memory reference implementation, which passes the whole suite
//!   (customers, interactions, profiles, value scores, segments, the outbox with its
//!   leases and ordering, domain events, pipelines and deals);
//! - [`Generator`]: seedable generators of realistic customers and interactions;
//!   [`deals`]: generated deals with their stage histories (the sales benchmarks);
//! - `postgres` (unix): a throwaway PostgreSQL cluster for adapter tests.
//!
//! An adapter's `tests/conformance.rs` is its setup function plus one macro call:
//!
//! ```
//! use std::sync::Arc;
//! use crm_testkit::{Fixture, MemoryStore};
//!
//! async fn setup() -> Fixture {
//!     Fixture::new(Arc::new(MemoryStore::new()))
//! }
//!
//! crm_testkit::conformance_tests!(setup);
//! # fn main() {}
//! ```
//!
//! ## Why these dependencies
//!
//! - `tokio`: the suite runs each case on a multi-threaded runtime it builds itself, so
//!   concurrency cases really race, and adapters need no runtime of their own in tests.
//! - `fastrand`: a small seedable random generator for reproducible data.
//! - `uuid`: builds the generators' reproducible UUIDv7 ids.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod conformance;
pub mod crash;
pub mod deals;
mod generate;
mod memory;
pub mod month;
#[cfg(unix)]
pub mod postgres;
pub mod rules;
pub mod scoped;
pub mod tls;
pub mod wild;
pub mod workload;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use crm_core::Storage;

pub use generate::{DuplicateKind, Generator, PlantedDuplicates};

/// Runs `f` on a thread with a 256 KiB stack (an eighth of a tokio worker's) and panics if
/// it panicked; a stack overflow aborts the test process. Adapters run their walks of the
/// largest accepted inputs ([`crm_core::segment::largest_rules`]) through it.
pub fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("a thread")
        .join()
        .expect("ran within 256 KiB of stack");
}
pub use memory::MemoryStore;

/// A benchmark's numeric option: the number after `name` on the command line (`--rows
/// 1_000_000`; underscores are dropped), or `default` when it is absent or not a number.
pub fn bench_arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// What a setup function hands to a case: the storage under test, and anything that must
/// live as long as it (a temporary directory, a server process).
pub struct Fixture {
    /// The storage under test.
    pub storage: Arc<dyn Storage>,
    guard: Option<Box<dyn Any + Send>>,
    skip: Option<String>,
}

impl Fixture {
    /// A fixture over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Fixture {
            storage,
            guard: None,
            skip: None,
        }
    }

    /// A fixture that skips the case, printing `reason` (for a backend that cannot be had
    /// here; make that a failure in CI, as `crm_testkit::postgres` does).
    pub fn skip(reason: &str) -> Self {
        Fixture {
            storage: Arc::new(MemoryStore::new()),
            guard: None,
            skip: Some(reason.to_string()),
        }
    }

    /// Keeps `guard` alive until the case has finished.
    pub fn with_guard(mut self, guard: impl Any + Send) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("guarded", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs one case against a fresh fixture on a new multi-threaded runtime. Panics (fails the
/// test) when the case fails.
pub fn run_case<S, SF, C, CF>(setup: S, case: C)
where
    S: FnOnce() -> SF,
    SF: Future<Output = Fixture>,
    C: FnOnce(Arc<dyn Storage>) -> CF,
    CF: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let fixture = setup().await;
        if let Some(reason) = &fixture.skip {
            eprintln!("skipped: {reason}");
            return;
        }
        case(fixture.storage.clone()).await;
        drop(fixture);
    });
}

/// The groups of the conformance suite, in order, as [`conformance_tests!`] takes them.
/// Each group needs the adapter to declare some [`Capabilities`](crm_core::Capabilities):
///
/// - `customers`: Customers
/// - `interactions`: Customers, Interactions
/// - `profiles`: Customers, Interactions, Profiles
/// - `values`: Values
/// - `segments`: Segments, Values
/// - `outbox`: Outbox, Segments
/// - `cases`: Cases, Outbox
/// - `tasks`: Tasks, Outbox
/// - `kpi`: KpiRules
/// - `staff`: HandOver, Cases, Tasks, Audit
/// - `access`: Sharing, HandOver, AccessLog, Segments, Sales
/// - `sales`: Sales, Outbox, HandOver, Merge, Erasure
/// - `whole`: every capability
pub const GROUPS: &[&str] = &[
    "customers",
    "interactions",
    "profiles",
    "values",
    "segments",
    "outbox",
    "cases",
    "tasks",
    "kpi",
    "staff",
    "access",
    "sales",
    "whole",
];

/// Every case name, group by group: the one list of the suite, kept equal to the cases
/// defined in [`conformance`] by the completeness test [`conformance_tests!`] adds.
pub fn case_names() -> Vec<&'static str> {
    let mut names = Vec::new();
    names.extend_from_slice(crate::__group!(__names_of!(); customers));
    names.extend_from_slice(crate::__group!(__names_of!(); interactions));
    names.extend_from_slice(crate::__group!(__names_of!(); profiles));
    names.extend_from_slice(crate::__group!(__names_of!(); values));
    names.extend_from_slice(crate::__group!(__names_of!(); segments));
    names.extend_from_slice(crate::__group!(__names_of!(); outbox));
    names.extend_from_slice(crate::__group!(__names_of!(); cases));
    names.extend_from_slice(crate::__group!(__names_of!(); tasks));
    names.extend_from_slice(crate::__group!(__names_of!(); kpi));
    names.extend_from_slice(crate::__group!(__names_of!(); staff));
    names.extend_from_slice(crate::__group!(__names_of!(); access));
    names.extend_from_slice(crate::__group!(__names_of!(); sales));
    names.extend_from_slice(crate::__group!(__names_of!(); whole));
    names
}

#[doc(hidden)]
#[macro_export]
macro_rules! __names_of {
    (; $group:ident [$($cap:ident),*]; $($case:ident),+) => {
        &[$(stringify!($case)),+]
    };
}

/// Runs one case of a group: checks first that the adapter declares the capabilities the
/// group needs (a clear failure naming them, rather than `Unsupported` deep in a case).
/// [`conformance_tests!`] calls it for every case of the groups it is given.
pub fn run_group_case<S, SF, C, CF>(setup: S, needs: crm_core::Capabilities, group: &str, case: C)
where
    S: FnOnce() -> SF,
    SF: Future<Output = Fixture>,
    C: FnOnce(Arc<dyn Storage>) -> CF,
    CF: Future<Output = ()>,
{
    run_case(
        move || async move {
            let fixture = setup().await;
            if fixture.skip.is_none() {
                let has = fixture.storage.capabilities();
                let missing: Vec<_> = needs.iter().filter(|c| !has.supports(*c)).collect();
                assert!(
                    missing.is_empty(),
                    "the group `{group}` needs {missing:?}, which the adapter does not declare: \
                     list only the groups it supports in conformance_tests!",
                );
            }
            fixture
        },
        case,
    );
}

/// Expands to one `#[test]` per conformance case, each running the case against a fresh
/// fixture from `$setup` (an async function returning a [`Fixture`]).
///
/// - `conformance_tests!(setup)`: every group, plus a test that no case is missing;
/// - `conformance_tests!(setup; customers, interactions, profiles)`: the named groups (see
///   [`GROUPS`]), for an adapter that provides fewer capabilities; each case first checks
///   that the adapter declares what its group needs;
/// - `conformance_tests!(setup; only: case_a, case_b)`: just the named cases.
///
/// Tests are named after their cases (for example `update_bumps_version`).
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path; only: $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run_case($setup, $crate::conformance::$case);
            }
        )+
    };
    ($setup:path; $($group:ident),+ $(,)?) => {
        $(
            $crate::__group!(__group_tests!($setup); $group);
        )+
    };
    ($setup:path) => {
        $crate::conformance_tests!($setup; customers, interactions, profiles, values, segments, outbox, cases, tasks, kpi, staff, access, sales, whole);

        #[test]
        fn conformance_suite_is_complete() {
            let all: Vec<&str> = $crate::conformance::all_cases().into_iter().map(|(n, _)| n).collect();
            assert_eq!($crate::case_names(), all);
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __group_tests {
    ($setup:path; $group:ident [ALL]; $($case:ident),+) => {
        $crate::__group_tests!(@emit $setup; $group; ($crate::__crm_core::Capabilities::ALL); $($case),+);
    };
    ($setup:path; $group:ident [$($cap:ident),*]; $($case:ident),+) => {
        $crate::__group_tests!(@emit $setup; $group;
            ($crate::__crm_core::Capabilities::REQUIRED$(.with($crate::__crm_core::Capability::$cap))*);
            $($case),+);
    };
    (@emit $setup:path; $group:ident; ($needs:expr); $($case:ident),+) => {
        $(
            #[test]
            fn $case() {
                $crate::run_group_case($setup, $needs, stringify!($group), $crate::conformance::$case);
            }
        )+
    };
}

/// The case names of each group: the one list of the suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __group {
    ($m:ident!($($args:tt)*); customers) => {
        $crate::$m! { $($args)*; customers [Customers];
            customer_round_trip_every_field,
            unknown_customer_is_not_found,
            duplicate_customer_id_is_duplicate,
            duplicate_external_id_is_duplicate,
            update_bumps_version,
            stale_update_is_conflict,
            concurrent_updates_exactly_one_wins,
            update_unknown_is_not_found,
            owner_changes_are_recorded,
            stale_owner_change_is_conflict,
            search_by_name_prefix,
            search_by_email,
            search_by_phone,
            search_by_tag,
            search_by_owner_and_lifecycle,
            search_by_external_id,
            customer_pages_have_no_gaps_or_repeats,
            customer_pages_under_concurrent_inserts,
            bad_cursor_or_limit_is_validation,
            invalid_customer_writes_nothing,
            update_replaces_attributes_and_contact_points,
            bulk_registration_is_all_or_nothing,
            tenant_isolation_on_reads,
            tenant_isolation_on_writes,
            same_ids_in_two_tenants_are_independent
        }
    };
    ($m:ident!($($args:tt)*); interactions) => {
        $crate::$m! { $($args)*; interactions [Customers, Interactions];
            interaction_round_trip_every_field,
            interaction_for_unknown_customer_is_not_found,
            batch_with_bad_row_writes_nothing,
            resent_batch_is_idempotent,
            duplicate_keys_within_a_batch_count_once,
            same_key_in_other_tenant_is_independent,
            reused_interaction_id_is_duplicate,
            timeline_is_newest_first,
            timeline_pages_under_concurrent_inserts,
            empty_batch_is_a_no_op,
            large_batch_over_many_customers,
            interactions_are_listed_by_time
        }
    };
    ($m:ident!($($args:tt)*); profiles) => {
        $crate::$m! { $($args)*; profiles [Customers, Interactions, Profiles];
            profiles_equal_rebuild_after_every_batch,
            profile_aggregates_follow_the_rules,
            concurrent_batches_keep_profiles_exact,
            batch_reads_equal_single_reads
        }
    };
    ($m:ident!($($args:tt)*); values) => {
        $crate::$m! { $($args)*; values [Values];
            value_scores_round_trip_and_replace,
            value_scores_are_all_or_nothing,
            value_models_latest_per_tenant,
            value_scores_are_tenant_isolated,
            value_classes_round_trip
        }
    };
    ($m:ident!($($args:tt)*); segments) => {
        $crate::$m! { $($args)*; segments [Segments, Values];
            segment_rules_match_the_reference_evaluation,
            segment_definitions_round_trip,
            segment_refresh_reports_entered_and_left,
            static_segments_are_hand_picked,
            segments_are_tenant_isolated,
            largest_rules_are_stored_run_and_read_back
        }
    };
    ($m:ident!($($args:tt)*); outbox) => {
        $crate::$m! { $($args)*; outbox [Outbox, Segments];
            outbox_enqueue_round_trips_and_skips_repeated_keys,
            outbox_claims_due_messages_in_priority_order,
            outbox_lease_guards_every_outcome,
            outbox_failures_retry_then_dead_letter_and_requeue,
            outbox_concurrent_claims_never_share_a_message,
            outbox_is_tenant_isolated,
            dispatcher_resolves_recipients_and_respects_consent,
            dispatcher_retries_transient_and_buries_permanent_failures,
            changes_and_their_outbox_messages_commit_together,
            events_are_delivered_in_order_per_entity,
            segment_changes_emit_entered_and_left_events,
            outbox_groups_report_each_group_and_are_all_or_nothing
        }
    };
    ($m:ident!($($args:tt)*); cases) => {
        $crate::$m! { $($args)*; cases [Cases, Outbox];
            cases_round_trip_with_their_timeline,
            cases_are_listed_by_customer_assignee_and_openness,
            concurrent_case_changes_exactly_one_wins,
            batch_case_reads_equal_single_reads,
            batch_case_writes_store_the_current_ones
        }
    };
    ($m:ident!($($args:tt)*); tasks) => {
        $crate::$m! { $($args)*; tasks [Tasks, Outbox];
            tasks_round_trip_snooze_and_complete,
            due_tasks_are_announced_once
        }
    };
    ($m:ident!($($args:tt)*); kpi) => {
        $crate::$m! { $($args)*; kpi [KpiRules];
            kpi_rules_are_stored_and_edited
        }
    };
    ($m:ident!($($args:tt)*); whole) => {
        $crate::$m! { $($args)*; whole [ALL];
            the_pool_reclaims_and_limits_claims,
            source_records_update_one_customer,
            duplicates_are_checked_refused_and_found,
            merge_moves_everything_to_the_survivor,
            export_holds_everything_about_one_customer,
            erased_data_cannot_be_found,
            archived_history_is_exported_purged_and_refused,
            audit_trail_records_every_change,
            largest_amounts_add_up_and_read_back,
            wild_records_read_back_equal,
            a_foreign_tenant_reaches_nothing,
            schedule_marks_changes_and_keeps_instants,
            kpi_runs_read_only_what_is_due,
            tenants_are_listed_and_job_leases_exclude
        }
    };
    ($m:ident!($($args:tt)*); staff) => {
        $crate::$m! { $($args)*; staff [HandOver, Cases, Tasks, Audit];
            departure_hands_over_everything_in_one_transaction
        }
    };
    ($m:ident!($($args:tt)*); sales) => {
        $crate::$m! { $($args)*; sales [Sales, Outbox, HandOver, Merge, Erasure];
            pipelines_round_trip_and_keep_their_stages,
            opportunities_move_through_stages_with_history,
            won_deals_hand_over_an_order_once,
            forecasts_are_exact_per_currency,
            funnels_follow_the_stage_histories,
            relationships_round_trip_with_one_primary,
            hierarchies_refuse_cycles_and_depth,
            merges_and_erasures_reach_accounts,
            account_timelines_and_profiles_include_contacts,
            account_transfers_take_the_contacts_along,
            account_and_deal_fields_select_in_rules
        }
    };
    ($m:ident!($($args:tt)*); access) => {
        $crate::$m! { $($args)*; access [Sharing, HandOver, AccessLog, Segments, Sales];
            grants_are_recorded_replaced_and_revoked,
            sharing_rules_round_trip,
            hand_over_moves_grants,
            access_is_logged_and_counted_within_the_limit,
            concurrent_takers_never_pass_the_limit,
            scoped_previews_match_record_by_record_reads
        }
    };
}

#[doc(hidden)]
pub use crm_core as __crm_core;
