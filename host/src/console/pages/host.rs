//! The console's host pages: the overview (queues, calls and failures over the last hour)
//! and the plugins with their instances and lifecycle.

use super::*;

pub async fn overview(State(s): State<AppState>, v: View) -> Page {
    let now = s.clock.now_secs();
    let store = s.service.store();
    let since = (now.div_euclid(60) - MINUTES as i64 + 1) * 60;
    let (inbox, outbox, per_minute) = tokio::join!(
        store.queue_stats(true),
        store.queue_stats(false),
        store.events_per_minute(since)
    );
    let database_ok = inbox.is_ok() && outbox.is_ok() && per_minute.is_ok();
    let (inbox, outbox) = (inbox.unwrap_or_default(), outbox.unwrap_or_default());
    let per_minute = per_minute.unwrap_or_default();
    let events = series_of(now, per_minute.iter().map(|m| (m.minute, m.events as f64)));
    let failure_events = series_of(
        now,
        per_minute.iter().map(|m| (m.minute, m.failures as f64)),
    );
    let history = s.history.snapshot(now);
    let instances = s.registry.instance_rows();
    let running = instances.iter().filter(|i| i.state == "running").count();
    let age = |oldest: Option<i64>| oldest.map_or(0, |o| (now - o).max(0));
    let latency: Vec<(String, &Series)> = history
        .latency
        .iter()
        .flat_map(|(name, (p50, p99))| [(format!("{name} p50"), p50), (format!("{name} p99"), p99)])
        .collect();
    let body = html! {
        @if !database_ok {
            (problem("The database did not answer: the queue figures and the event chart are missing."))
        }
        section.cards {
            div.card #card-instances {
                h2 { "Provider instances" }
                p.figure { (running) " of " (instances.len()) " running" }
                ul.plain {
                    @for i in &instances {
                        li { a href="/console/plugins" { (i.name) } " " (state_badge(&i.state)) }
                    }
                }
            }
            div.card #card-inbox {
                h2 { "Webhook inbox" }
                p.figure { (inbox.pending) " pending" }
                p { a href="/console/inbox?status=failed" { (inbox.failed) " failed" }
                    " · oldest pending " (age(inbox.oldest_pending)) " s" }
            }
            div.card #card-outbox {
                h2 { "Outbox" }
                p.figure { (outbox.pending) " pending" }
                p { a href="/console/outbox?status=failed" { (outbox.failed) " failed" }
                    " · oldest pending " (age(outbox.oldest_pending)) " s" }
            }
        }
        section.charts {
            (chart::lines("chart-events", "Events per minute", "events", &[
                Line { name: "events recorded".into(), values: &events },
                Line { name: "failure events (…failed)".into(), values: &failure_events },
                Line { name: "failed provider calls (this host)".into(), values: &history.failures },
            ]))
            (chart::lines("chart-backlog", "Webhook backlog", "pending inbox rows, sampled by this host", &[
                Line { name: "pending".into(), values: &history.backlog },
            ]))
            (chart::lines("chart-latency", "Provider call latency (this host)", "ms", &latency
                .iter()
                .map(|(name, values)| Line { name: name.clone(), values })
                .collect::<Vec<_>>()))
        }
        p.hint { "The charts cover the last 60 minutes. Latency percentiles are within about 10%. "
            label { input #live type="checkbox"; " refresh every 10 s" } }
    };
    v.page("Overview", "overview", body)
}

pub async fn plugins(State(s): State<AppState>, v: View) -> Page {
    let plugins = s.registry.plugin_rows();
    let instances = s.registry.instance_rows();
    let mut timeline: Vec<_> = s
        .registry
        .dispatcher()
        .recent_lifecycle()
        .into_iter()
        .filter_map(|st| match st.event {
            Event::Lifecycle(e) => Some((st.seq, st.at_millis, e)),
            Event::Domain(_) => None,
        })
        .collect();
    timeline.sort_by_key(|t| std::cmp::Reverse(t.0));
    let body = html! {
        section {
            div.toolbar {
                p { "Plugins folder: " code { (s.config.plugin_dir.display()) } }
                (button(&v, "/console/plugins/rescan", "rescan", "Rescan the folder", None))
            }
            table #plugins {
                thead { tr { th { "Plugin" } th { "Version" } th { "Contract" } th { "Type" }
                    th { "Capabilities" } th { "File" } th { "Trust" } th { "State" } th { "Instances" } th {} } }
                tbody {
                    @for p in &plugins {
                        @let name = p.name.clone().unwrap_or_default();
                        tr id=(format!("plugin-{name}")) {
                            td { (name) }
                            td { (p.version.as_deref().unwrap_or("—")) }
                            td { (p.contract.as_deref().unwrap_or("—")) }
                            td { (p.plugin_type.as_deref().unwrap_or("—")) }
                            td.caps { (p.capabilities.join(", ")) }
                            td { code { (p.file) } }
                            td.trust title=(p.sha256.as_deref().map(|h| format!("sha256 {h}")).unwrap_or_default()) {
                                (trust_badge(p.trust.as_deref())) }
                            td { (state_badge(p.state.split(':').next().unwrap_or(""))) @if p.state.starts_with("error") { " " span.detail { (p.state) } } }
                            td { (p.instances.join(", ")) }
                            td.actions {
                                @if !name.is_empty() {
                                    (button(&v, &format!("/console/plugins/{name}/stop"), &format!("stop-{name}"), "Stop", None))
                                    (button(&v, &format!("/console/plugins/{name}/reload"), &format!("reload-{name}"), "Reload", None))
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Instances" }
            table #instances {
                thead { tr { th { "Instance" } th { "Plugin" } th { "Version" } th { "Contract" } th { "Capabilities" } th { "State" } } }
                tbody {
                    @for i in &instances {
                        tr id=(format!("instance-{}", i.name)) {
                            td { (i.name) }
                            td { (i.plugin) }
                            td { (i.version.as_deref().unwrap_or("—")) }
                            td { (i.contract.as_deref().unwrap_or("—")) }
                            td.caps { (i.capabilities.join(", ")) }
                            td { (state_badge(i.state.split(':').next().unwrap_or(""))) @if i.state.starts_with("error") { " " span.detail { (i.state) } } }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Lifecycle" }
            ol #timeline .timeline {
                @for (seq, at_millis, e) in &timeline {
                    @let value = serde_json::to_value(e).unwrap_or_default();
                    li data-seq=(seq) {
                        (when(at_millis / 1000)) " "
                        strong.kind { (value["type"].as_str().unwrap_or("")) } " "
                        span.name { (value["name"].as_str().unwrap_or("")) }
                        @if let Some(fields) = value.as_object() {
                            @for (k, f) in fields.iter().filter(|(k, _)| *k != "type" && *k != "name") {
                                " " span.field { (k) ": " (f.as_str().map_or_else(|| f.to_string(), str::to_owned)) }
                            }
                        }
                    }
                }
            }
        }
    };
    v.page("Plugins and instances", "plugins", body)
}
