//! The console's page, rendered on the server so that it reads with
//! JavaScript off: the flow (an inline SVG chart of the counters' deltas, and
//! the relay per shard), the dead letters by cause with their redrive forms,
//! the parked aggregates with their unpark forms, the consumers, an event's
//! story, and what to run from the command line. `console.js` only refreshes
//! the live part; `console.css` styles it. Every text from the store is escaped.

use std::fmt::Write;

use time::OffsetDateTime;

use super::story::{ConsumerState, Story};
use super::view::{History, Snapshot};

/// The stylesheet, served at `/console.css`.
pub const STYLESHEET: &str = include_str!("console.css");
/// The script, served at `/console.js`.
pub const SCRIPT: &str = include_str!("console.js");

/// The icon, served at `/favicon.svg` (a browser asks for one).
pub const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
    <rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#1f77b4\"/></svg>";

/// The chart's colours, one per series in turn.
const COLOURS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// What one rendering of the page needs.
pub struct PageData<'a> {
    /// The latest snapshot.
    pub snapshot: &'a Snapshot,
    /// The samples for the chart.
    pub history: &'a History,
    /// The session token for the forms.
    pub token: &'a str,
    /// Seconds between samples.
    pub every: u64,
    /// Where events go and letters are.
    pub target: &'a str,
    /// The story asked for, told or refused.
    pub story: Option<Result<Story, String>>,
    /// What was asked for the story, as typed.
    pub asked: &'a str,
}

/// `text` safe inside HTML text and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The whole page.
pub fn page(data: &PageData<'_>) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>outbox console</title><link rel=\"icon\" href=\"/favicon.svg\">\
         <link rel=\"stylesheet\" href=\"/console.css\"></head>\
         <body data-every=\"{every}\"><header><h1>outbox console</h1>\
         <p>store: {store} · events and letters: {target} · sampled every {every} s \
         <span id=\"refresh-state\">(reload to refresh)</span></p></header>\
         <main id=\"live\">{live}</main><script src=\"/console.js\"></script></body></html>\n",
        every = data.every,
        store = escape(&data.snapshot.status.store),
        target = escape(data.target),
        live = live(data),
    )
}

/// The part the script refreshes.
pub fn live(data: &PageData<'_>) -> String {
    let mut html = String::new();
    flow(&mut html, data);
    dead_letters(&mut html, data);
    parked(&mut html, data);
    consumers(&mut html, data.snapshot);
    story(&mut html, data);
    fixes(&mut html, data.snapshot);
    html
}

/// A page answering an action: what was done, or why not.
pub fn outcome(title: &str, text: &str, done: bool) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><link rel=\"icon\" href=\"/favicon.svg\">\
         <link rel=\"stylesheet\" href=\"/console.css\"></head>\
         <body><main><h1>{title}</h1><pre id=\"outcome\" class=\"{class}\">{text}</pre>\
         <p><a id=\"back\" href=\"/\">Back to the console</a></p></main></body></html>\n",
        title = escape(title),
        class = if done { "done" } else { "refused" },
        text = escape(text),
    )
}

fn age(now: OffsetDateTime, at: Option<OffsetDateTime>) -> String {
    at.map_or_else(
        || "unknown".to_owned(),
        |at| seconds((now - at).whole_seconds()),
    )
}

fn seconds(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds / 60 % 60),
    }
}

fn token_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"token\" value=\"{}\">",
        escape(token)
    )
}

fn flow(html: &mut String, data: &PageData<'_>) {
    let status = &data.snapshot.status;
    let _ = write!(
        html,
        "<section id=\"flow\"><h2>Flow</h2><p><b>{}</b> events committed, <b>{}</b> relayed; \
         read {} ago.</p>",
        status.committed,
        status.relayed,
        age(OffsetDateTime::now_utc(), Some(data.snapshot.at)),
    );
    chart(html, data.history, data.every);
    html.push_str(
        "<h3>Relay per shard</h3><table><thead><tr><th>shard</th><th>relayed up to</th>\
         <th>read by</th><th>lag</th></tr></thead><tbody>",
    );
    for shard in &status.shards {
        let lag = match (&shard.oldest_unrelayed, shard.lag_seconds) {
            _ if shard.finished => "finished".to_owned(),
            (None, _) => "caught up".to_owned(),
            (Some(sequence), Some(lag)) => {
                format!("behind from {}, {} old", escape(sequence), seconds(lag))
            }
            (Some(sequence), None) => format!("behind from {}", escape(sequence)),
        };
        let class = if shard.oldest_unrelayed.is_some() && !shard.finished {
            " class=\"behind\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{lag}</td></tr>",
            escape(&shard.shard),
            escape(shard.position.as_deref().unwrap_or("(start)")),
            escape(shard.holder.as_deref().unwrap_or("no relay")),
        );
    }
    html.push_str("</tbody></table></section>");
}

/// The deltas of each counter between samples, as an inline SVG line chart.
fn chart(html: &mut String, history: &History, every: u64) {
    let samples: Vec<_> = history.samples().collect();
    if samples.len() < 2 {
        let _ = write!(
            html,
            "<p class=\"chart-empty\">The chart starts after two samples ({every} s apart).</p>"
        );
        return;
    }
    let mut series: Vec<(String, Vec<u64>)> = vec![
        ("committed".into(), Vec::new()),
        ("relayed".into(), Vec::new()),
    ];
    for (name, _) in &samples[0].applied {
        series.push((format!("applied by {name}"), Vec::new()));
    }
    for pair in samples.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        series[0]
            .1
            .push(after.committed.saturating_sub(before.committed));
        series[1]
            .1
            .push(after.relayed.saturating_sub(before.relayed));
        for (n, (_, applied)) in after.applied.iter().enumerate() {
            let earlier = before.applied.get(n).map_or(0, |(_, count)| *count);
            if let Some((_, deltas)) = series.get_mut(n + 2) {
                deltas.push(applied.saturating_sub(earlier));
            }
        }
    }
    let (width, height, pad) = (720.0_f64, 180.0_f64, 28.0_f64);
    let top = series
        .iter()
        .flat_map(|(_, deltas)| deltas.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let points = samples.len() - 1;
    let step = (width - 2.0 * pad) / (points.max(2) - 1) as f64;
    let _ = write!(
        html,
        "<svg id=\"flow-chart\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" \
         height=\"{height}\" aria-label=\"events per sample over the last {minutes} minutes\">\
         <line x1=\"{pad}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#999\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{bottom}\" stroke=\"#999\"/>\
         <text x=\"2\" y=\"{label}\" font-size=\"11\">{top}</text>\
         <text x=\"2\" y=\"{bottom}\" font-size=\"11\">0</text>",
        minutes = (points as u64 * every).div_ceil(60),
        bottom = height - pad,
        right = width - pad,
        label = pad + 4.0,
    );
    for (n, (name, deltas)) in series.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let line: Vec<String> = deltas
            .iter()
            .enumerate()
            .map(|(i, delta)| {
                let x = pad + step * i as f64;
                let y = height - pad - (height - 2.0 * pad) * (*delta as f64) / (top as f64);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            html,
            "<polyline class=\"series\" data-series=\"{name}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"2\" points=\"{points}\"><title>{name}</title></polyline>",
            name = escape(name),
            points = line.join(" "),
        );
    }
    html.push_str("</svg><ul class=\"legend\">");
    for (n, (name, deltas)) in series.iter().enumerate() {
        let _ = write!(
            html,
            "<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" \
             fill=\"{}\"/></svg> {} ({} in the last {every} s)</li>",
            COLOURS[n % COLOURS.len()],
            escape(name),
            deltas.last().copied().unwrap_or(0),
        );
    }
    html.push_str("</ul>");
}

fn dead_letters(html: &mut String, data: &PageData<'_>) {
    let snapshot = data.snapshot;
    let now = OffsetDateTime::now_utc();
    let letters: usize = snapshot.groups.iter().map(|g| g.letters.len()).sum();
    let _ = write!(
        html,
        "<section id=\"dead-letters\"><h2>Dead letters by cause ({letters})</h2>"
    );
    if snapshot.malformed > 0 {
        let _ = write!(
            html,
            "<p>{} message(s) of the queue are no dead letters: kept for a person.</p>",
            snapshot.malformed
        );
    }
    if snapshot.groups.is_empty() {
        html.push_str("<p class=\"none\">No dead letters.</p></section>");
        return;
    }
    html.push_str(
        "<p>A redrive sends each letter back where it came from; a letter is deleted only \
         once its event was accepted again.</p><table><thead><tr><th>reason</th><th>source</th>\
         <th>consumer</th><th>letters</th><th>oldest</th><th>newest</th><th></th></tr></thead><tbody>",
    );
    for group in &snapshot.groups {
        let _ = write!(
            html,
            "<tr class=\"cause\" data-cause=\"{id}\"><td class=\"reason\">{reason}</td><td>{source}</td>\
             <td>{consumer}</td><td class=\"count\">{count}</td><td>{oldest} ago</td><td>{newest} ago</td>\
             <td><form method=\"post\" action=\"/actions/redrive\">{token}\
             <input type=\"hidden\" name=\"cause\" value=\"{id}\">\
             <button class=\"redrive-cause\">Redrive {count}</button></form></td></tr>\
             <tr class=\"letters\"><td colspan=\"7\"><details><summary>the letters (cause {id})</summary>\
             <table><thead><tr><th>letter</th><th>source</th><th>event</th><th>aggregate</th>\
             <th>attempts</th><th>age</th><th></th></tr></thead><tbody>",
            id = escape(&group.id),
            reason = escape(&group.cause.reason),
            source = group.cause.source.label(),
            consumer = escape(group.cause.consumer.as_deref().unwrap_or("(the relay)")),
            count = group.letters.len(),
            oldest = age(now, group.oldest),
            newest = age(now, group.newest),
            token = token_field(data.token),
        );
        for letter in &group.letters {
            let _ = write!(
                html,
                "<tr class=\"letter\" data-letter=\"{id}\"><td>{id}</td><td>{source}</td><td>{event}</td>\
                 <td>{aggregate}</td><td>{attempts}</td><td>{age}</td><td><form method=\"post\" \
                 action=\"/actions/redrive\">{token}<input type=\"hidden\" name=\"letter\" value=\"{id}\">\
                 <button class=\"redrive-letter\">Redrive</button></form></td></tr>",
                id = escape(&letter.id),
                source = escape(&letter.source),
                event = escape(letter.event_id.as_deref().unwrap_or("(undecoded)")),
                aggregate = escape(letter.aggregate.as_deref().unwrap_or("")),
                attempts = letter.attempts,
                age = age(now, letter.stored_at),
                token = token_field(data.token),
            );
        }
        html.push_str("</tbody></table></details></td></tr>");
    }
    html.push_str("</tbody></table></section>");
}

fn parked(html: &mut String, data: &PageData<'_>) {
    let parked = &data.snapshot.status.parked;
    let _ = write!(
        html,
        "<section id=\"parked\"><h2>Parked aggregates ({})</h2>",
        parked.len()
    );
    if parked.is_empty() {
        html.push_str("<p class=\"none\">No aggregate is parked.</p></section>");
        return;
    }
    html.push_str(
        "<p>An ordered consumer parks an aggregate whose next version does not arrive. \
         Apply its held events once the missing one is there (a redrive of it, say), or give \
         the missing version up: a skip is recorded with who decided it and why.</p>\
         <table><thead><tr><th>consumer</th><th>aggregate</th><th>waits for</th><th>held</th>\
         <th>reason</th><th>parked</th><th></th></tr></thead><tbody>",
    );
    for entry in parked {
        let _ = write!(
            html,
            "<tr class=\"parked\" data-consumer=\"{consumer}\" data-aggregate=\"{aggregate}\">\
             <td>{consumer}</td><td>{aggregate}</td><td>version {missing}</td><td>{held}</td>\
             <td>{reason}</td><td>{age} ago</td><td>\
             <form method=\"post\" action=\"/actions/unpark\">{token}{ids}\
             <button class=\"unpark\">Apply held events</button></form>\
             <form method=\"post\" action=\"/actions/unpark\" class=\"skip\">{token}{ids}\
             <input type=\"hidden\" name=\"skip\" value=\"yes\">\
             <label>by <input name=\"by\" required placeholder=\"you@example.com\"></label> \
             <label>why <input name=\"why\" required placeholder=\"why it is given up\"></label> \
             <button class=\"skip\">Skip version {missing}</button></form></td></tr>",
            consumer = escape(&entry.consumer),
            aggregate = escape(&entry.aggregate),
            missing = entry.missing,
            held = entry.held,
            reason = escape(&entry.reason),
            age = seconds(entry.parked_seconds),
            token = token_field(data.token),
            ids = format_args!(
                "<input type=\"hidden\" name=\"consumer\" value=\"{}\">\
                 <input type=\"hidden\" name=\"aggregate\" value=\"{}\">",
                escape(&entry.consumer),
                escape(&entry.aggregate)
            ),
        );
    }
    html.push_str("</tbody></table></section>");
}

fn consumers(html: &mut String, snapshot: &Snapshot) {
    html.push_str(
        "<section id=\"consumers\"><h2>Consumers</h2><table><thead><tr><th>consumer</th>\
         <th>events handled</th><th>effects applied</th><th>duplicates dropped</th>\
         <th>committed, not applied</th><th>oldest of those</th></tr></thead><tbody>",
    );
    for consumer in &snapshot.status.consumers {
        let _ = write!(
            html,
            "<tr data-consumer=\"{}\"><td>{}</td><td class=\"handled\">{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            escape(&consumer.name),
            escape(&consumer.name),
            consumer.handled,
            consumer.effects,
            consumer.duplicates,
            consumer.unapplied,
            consumer
                .oldest_unapplied_seconds
                .map_or_else(String::new, |age| format!("{} old", seconds(age))),
        );
    }
    html.push_str("</tbody></table></section>");
}

fn story(html: &mut String, data: &PageData<'_>) {
    let _ = write!(
        html,
        "<section id=\"story\"><h2>An event's story</h2><form method=\"get\" action=\"/\">\
         <label>event id or TYPE#ID <input name=\"story\" value=\"{}\" size=\"48\"></label> \
         <button class=\"look-up\">Look up</button></form>",
        escape(data.asked)
    );
    match &data.story {
        None => {}
        Some(Err(refused)) => {
            let _ = write!(html, "<p class=\"refused\">{}</p>", escape(refused));
        }
        Some(Ok(story)) if story.events.is_empty() => {
            let _ = write!(
                html,
                "<p class=\"none\">No event of {} is in the outbox.</p>",
                escape(&story.asked)
            );
        }
        Some(Ok(story)) => {
            html.push_str(
                "<table><thead><tr><th>event</th><th>aggregate</th><th>outbox</th>\
                 <th>bus</th><th>consumers</th><th>dead letters</th></tr></thead><tbody>",
            );
            for told in &story.events {
                let event = &told.event;
                let consumers: Vec<String> = told
                    .consumers
                    .iter()
                    .map(|(name, state)| {
                        let (class, text) = match state {
                            ConsumerState::Applied => ("applied", "applied"),
                            ConsumerState::Missing => ("missing", "missing: parked for it"),
                            ConsumerState::Held => ("held", "held behind a gap"),
                            ConsumerState::NotApplied => ("not-applied", "not applied"),
                        };
                        format!("<li class=\"{class}\">{}: {text}</li>", escape(name))
                    })
                    .collect();
                let letters: Vec<String> = told
                    .letters
                    .iter()
                    .map(|(letter, cause)| {
                        format!("letter {} (cause {})", escape(letter), escape(cause))
                    })
                    .collect();
                let _ = write!(
                    html,
                    "<tr class=\"story-event\" data-event=\"{id}\"><td>{id}<br>{kind}</td>\
                     <td>{aggregate} v{version}</td><td>committed {committed} ago</td><td>{bus}</td>\
                     <td><ul>{consumers}</ul></td><td>{letters}</td></tr>",
                    id = event.event_id,
                    kind = escape(&event.event_type),
                    aggregate = escape(&event.aggregate().to_string()),
                    version = event.aggregate_version.value(),
                    committed = age(OffsetDateTime::now_utc(), Some(event.occurred_at)),
                    bus = if told.relayed { "relayed" } else { "not relayed yet" },
                    consumers = if consumers.is_empty() {
                        "no consumer subscribes".to_owned()
                    } else {
                        consumers.concat()
                    },
                    letters = if letters.is_empty() {
                        "none".to_owned()
                    } else {
                        letters.join("<br>")
                    },
                );
            }
            html.push_str("</tbody></table>");
        }
    }
    html.push_str("</section>");
}

fn fixes(html: &mut String, snapshot: &Snapshot) {
    if snapshot.status.fixes.is_empty() {
        return;
    }
    html.push_str("<section id=\"fixes\"><h2>From the command line</h2><pre>");
    for fix in &snapshot.status.fixes {
        let _ = writeln!(html, "{}", escape(fix));
    }
    html.push_str("</pre></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_store_cannot_become_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let answer = outcome("Redrive", "<b>1 accepted</b>", true);
        assert!(answer.contains("&lt;b&gt;1 accepted&lt;/b&gt;"), "{answer}");
        assert!(answer.contains("class=\"done\""), "{answer}");
    }

    #[test]
    fn the_chart_draws_each_counter_s_change_between_samples() {
        use super::super::view::{Sample, KEPT_SAMPLES};
        let sample = |seconds: i64, committed: u64, applied: u64| Sample {
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds),
            committed,
            relayed: committed,
            applied: vec![("invoicing".into(), applied)],
        };
        let mut history = History::default();
        history.push(sample(0, 10, 0));
        let mut html = String::new();
        chart(&mut html, &history, 5);
        assert!(html.contains("starts after two samples"), "{html}");
        history.push(sample(5, 14, 0));
        history.push(sample(10, 14, 4));
        let mut html = String::new();
        chart(&mut html, &history, 5);
        // Deltas 4 then 0 for committed, 0 then 4 for invoicing, on a scale of 4.
        assert!(
            html.contains("data-series=\"committed\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"28.0,28.0 692.0,152.0\""),
            "{html}"
        );
        assert!(
            html.contains("data-series=\"applied by invoicing\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\" points=\"28.0,152.0 692.0,28.0\""),
            "{html}"
        );
        assert!(
            html.contains("applied by invoicing (4 in the last 5 s)"),
            "{html}"
        );
        for n in 0..KEPT_SAMPLES {
            history.push(sample(15 + n as i64, 14, 4));
        }
        assert_eq!(history.samples().count(), KEPT_SAMPLES);
    }

    #[test]
    fn ages_read_in_the_largest_unit_that_fits() {
        assert_eq!(seconds(-3), "0 s");
        assert_eq!(seconds(59), "59 s");
        assert_eq!(seconds(61), "1 min 1 s");
        assert_eq!(seconds(7260), "2 h 1 min");
    }
}
