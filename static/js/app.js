// Small helpers for the dashboard; the pages work without them (plain links and forms).
(function () {
  "use strict";
  var KEY = "dagsapp.closedGroups";

  function closedGroups() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || "[]"); } catch (e) { return []; }
  }

  // Task groups collapsed by the user stay collapsed when the grid refreshes itself.
  function applyGroups(root) {
    var closed = closedGroups();
    (root || document).querySelectorAll("details[data-group]").forEach(function (el) {
      if (closed.indexOf(el.dataset.group) !== -1) el.open = false;
    });
  }

  document.addEventListener("toggle", function (event) {
    var el = event.target;
    if (!el.dataset || !el.dataset.group) return;
    var closed = closedGroups().filter(function (g) { return g !== el.dataset.group; });
    if (!el.open) closed.push(el.dataset.group);
    sessionStorage.setItem(KEY, JSON.stringify(closed));
  }, true);

  // Polling pauses while the user is working in the panel: a box ticked (rows, "with downstream"),
  // or a field in use. (Here, not as an hx-trigger filter: the CSP forbids the eval htmx uses for those.)
  function idle(elt) {
    if (elt.querySelector("input[type=checkbox]:checked")) return false;
    var active = document.activeElement;
    return !(active && elt.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName));
  }

  // The auto-refresh toggle, remembered in this browser: off, no poll goes out (clicks and actions still do).
  var AUTO = "dagsapp.autoRefresh";
  function autoRefresh() { try { return localStorage.getItem(AUTO) !== "off"; } catch (e) { return true; } }
  document.addEventListener("change", function (event) {
    if (event.target.id !== "auto-refresh") return;
    try { localStorage.setItem(AUTO, event.target.checked ? "on" : "off"); } catch (e) { /* private mode: for this page only */ }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("auto-refresh");
    if (box) box.checked = autoRefresh();
  });
  // A poll ("every Ns") is the one request htmx issues without a triggering event.
  function isPoll(event) {
    var config = event.detail.requestConfig, elt = event.detail.elt;
    return !(config && config.triggeringEvent) && elt.getAttribute && /\bevery\b/.test(elt.getAttribute("hx-trigger") || "");
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!autoRefresh() && isPoll(event)) event.preventDefault();
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    // The panel's own poll only (its children's requests have themselves as elt); polling goes on.
    if (elt.hasAttribute && elt.hasAttribute("data-poll-when-idle") && !idle(elt)) event.preventDefault();
  });

  // A Graph node: a plain click opens the details panel by htmx instead of following the link;
  // with a modifier key the browser opens the link in a new tab or window.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-open-in-panel]");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    htmx.trigger(link, "dagsapp-open");
  });

  // Bulk actions say how many rows are ticked and are disabled while none is (enabled without JavaScript).
  function updateSelection() {
    document.querySelectorAll("#task-panel").forEach(function (panel) {
      var n = panel.querySelectorAll("input.sel:checked").length;
      panel.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
      panel.querySelectorAll("[data-selection-count]").forEach(function (c) { c.textContent = String(n); });
    });
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches && box.matches("[data-select-all]")) {
      box.closest("table").querySelectorAll("input.sel").forEach(function (c) { c.checked = box.checked; });
    }
    if (box.matches && box.matches("input.sel, [data-select-all]")) updateSelection();
    // A picker that shows its choice at once (the Graph's run); without JavaScript a button does.
    if (box.matches && box.matches("[data-submit-on-change]")) box.form.submit();
  });

  // The clicked cell is marked selected at once; the grid body is not re-rendered on a click.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.classList && elt.classList.contains("cell")) {
      document.querySelectorAll(".cell.selected").forEach(function (c) { c.classList.remove("selected"); });
      elt.classList.add("selected");
    }
  });

  // The log viewer (templates/runs/_log_viewer.html). A tailing log stays scrolled to the bottom if
  // the reader was already there.
  document.addEventListener("htmx:oobBeforeSwap", function () {
    var log = document.getElementById("log-lines");
    if (log) log.dataset.stick = String(log.scrollTop + log.clientHeight >= log.scrollHeight - 4);
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    var log = document.getElementById("log-lines");
    if (log && log.dataset.stick === "true") log.scrollTop = log.scrollHeight;
  });
  // Wrapping long lines, remembered in this browser.
  var WRAP = "dagsapp.logWrap";
  function wrapOn() { try { return localStorage.getItem(WRAP) === "on"; } catch (e) { return false; } }
  // A fresh viewer shows the search's current match, else the newest lines (its window is the end of the log).
  function placeLog(root) {
    var viewer = (root && root.id === "log-viewer") ? root : (root || document).querySelector("#log-viewer");
    if (!viewer) return;
    var lines = viewer.querySelector("#log-lines"), button = viewer.querySelector("[data-log-wrap]");
    if (lines) lines.classList.toggle("wrap", wrapOn());
    if (button) button.setAttribute("aria-pressed", String(wrapOn()));
    if (!lines || viewer.dataset.placed) return;
    viewer.dataset.placed = "1";
    var current = lines.querySelector(".ll.current");
    if (current) current.scrollIntoView({block: "center"});
    else if (!viewer.querySelector("#log-later")) lines.scrollTop = lines.scrollHeight;
  }
  // Enter in the search box again (the same words) goes to the next match, Shift+Enter to the previous,
  // as in a browser's find bar; new words search anew (the form).
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key !== "Enter" || box.id !== "log-q" || !box.value || box.value !== box.defaultValue) return;
    var link = document.getElementById(event.shiftKey ? "log-prev-match" : "log-next-match");
    if (!link) return;
    event.preventDefault();
    link.click();
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-log-wrap]");
    if (!button) return;
    try { localStorage.setItem(WRAP, wrapOn() ? "off" : "on"); } catch (e) { /* private mode */ }
    placeLog(button.closest("#log-viewer"));
  });

  // A confirmation dialog loaded by htmx opens as a modal; Cancel (a link back, without JavaScript) closes it.
  function openDialogs() {
    document.querySelectorAll("dialog[data-modal]:not([open])").forEach(function (d) { if (d.isConnected) d.showModal(); });
  }
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-close-dialog]");
    if (!close || event.button !== 0) return;
    var dialog = close.closest("dialog");
    if (!dialog) return;
    event.preventDefault();
    dialog.close();
    dialog.remove();
  });

  // The colour theme: light, dark, or "system" (prefers-color-scheme); static/js/theme.js applies it before the first paint.
  var THEME = "dagsapp.theme";
  function storedTheme() { try { return localStorage.getItem(THEME) || "system"; } catch (e) { return "system"; } }
  document.addEventListener("change", function (event) {
    if (event.target.id !== "theme-select") return;
    var theme = event.target.value;
    try { localStorage.setItem(THEME, theme); } catch (e) { /* private mode: for this page only */ }
    if (theme === "light" || theme === "dark") document.documentElement.setAttribute("data-theme", theme);
    else document.documentElement.removeAttribute("data-theme");
  });
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("theme-select");
    if (!select) return;
    select.value = storedTheme();
    select.closest("label").hidden = false;
  });

  // The browser's time zone (Intl) goes with the time zone form; a user who chose "the browser's
  // zone" and opens the dashboard somewhere else has it updated once, and the page shown again in it.
  function browserZone() { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; } }
  document.addEventListener("DOMContentLoaded", function () {
    var menu = document.getElementById("tz-menu"), zone = browserZone();
    if (!menu || !zone) return;
    document.getElementById("tz-browser-zone").value = zone;
    document.getElementById("tz-detected").textContent = "(" + zone + ")";
    var tried = "dagsapp.tzSynced." + zone;
    if (menu.dataset.tzMode !== "browser" || menu.dataset.tzBrowser === zone || sessionStorage.getItem(tried)) return;
    sessionStorage.setItem(tried, "1");
    var form = document.getElementById("tz-form"), data = new FormData(form);
    data.set("mode", "browser");
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin" }).then(function (r) { if (r.ok) location.reload(); });
  });
  // Typing in the named zone's field chooses "a named zone".
  document.addEventListener("input", function (event) {
    if (event.target.id === "tz-zone") document.getElementById("tz-mode-named").checked = true;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    applyGroups(event.detail.elt); openDialogs(); updateSelection(); placeLog(document);
  });
  document.addEventListener("DOMContentLoaded", function () { applyGroups(document); updateSelection(); placeLog(document); });
})();
