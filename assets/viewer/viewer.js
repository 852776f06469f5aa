// The activity viewer: an org's audit trail for one of a platform's
// customers, on the public GraphQL API alone, with a viewer token.
//
// Served at /viewer (the token in the URL fragment, `#token=...`, which the
// browser never sends, or by postMessage), or included by a platform as one
// script: `ActivityViewer.mount(element, { endpoint, token })`.
//
// Every value from the API is rendered as text (textContent), never as
// markup. No eval, no inline script or style: the page runs under a strict
// Content-Security-Policy.
(function () {
  "use strict";

  var TOKEN_KEY = "activity-viewer-token";
  var COLUMNS_KEY = "activity-viewer-columns";
  var PAGE_SIZE = 50;
  var COLUMNS = [
    ["timestamp", "Time"],
    ["action", "Action"],
    ["statusCode", "Status"],
    ["method", "Method"],
    ["path", "Path"],
    ["userId", "User"],
    ["workspaceId", "Workspace"],
    ["appId", "App"],
    ["endpointId", "Endpoint"],
    ["resourceType", "Resource type"],
    ["resourceId", "Resource"],
    ["durationMs", "Duration (ms)"],
    ["tokensTotal", "Tokens"],
    ["principalType", "Principal"]
  ];
  // The filters the page's query string holds.
  var FILTERS = ["range", "start", "end", "search", "action", "status", "user", "workspace", "app", "endpoint", "resource_type", "resource_id"];
  var DEFAULT_COLUMNS = ["timestamp", "action", "statusCode", "method", "path", "userId", "workspaceId", "durationMs"];
  // Presets, in hours; the summary covers at most 168.
  var RANGES = [["1h", 1], ["24h", 24], ["7d", 168]];
  var FIELDS = "id logIndex timestamp traceId action statusCode success errorCode method path " +
    "resourceType resourceId userId workspaceId appId endpointId augmentationId principalType " +
    "principalId tokenType durationMs tokensTotal tokenUsage metadata";
  var WHO = "{ viewer { principalType permissions org { id name } } }";
  var FEED = "query($org: ID!, $first: Int, $after: String, $filter: ActivityFilterInput) " +
    "{ org(id: $org) { activity(first: $first, after: $after, filter: $filter) " +
    "{ totalCount pageInfo { hasNextPage endCursor } nodes { " + FIELDS + " } } } }";
  var SUMMARY = "query($org: ID!, $hours: Int, $filter: ActivityFilterInput, $interval: BucketInterval) " +
    "{ org(id: $org) { activitySummary(hours: $hours, filter: $filter) { totalRequests failedRequests " +
    "startTime endTime durationPercentiles { p95 } buckets(interval: $interval) { start totalRequests failedRequests } } } }";
  var TAIL = "subscription($org: ID!, $filter: ActivityFilterInput, $after: String) " +
    "{ activityAdded(orgId: $org, filter: $filter, after: $after) { cursor node { " + FIELDS + " } } }";

  // Elements are built from text only.
  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === null || value === undefined || value === false) return;
      node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function text(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function ViewerError(kind, message) {
    this.kind = kind;
    this.message = message;
  }

  var MESSAGES = {
    expired: "Your session has ended. Open the activity view again from the application.",
    forbidden: "Permission refused: this view may not show that.",
    unreachable: "The server cannot be reached. Retrying when you act again.",
    empty: "No events match these filters.",
    loading: "Loading…",
    waiting: "Waiting for a viewer token…"
  };

  function Viewer(root, options) {
    this.root = root;
    this.endpoint = new URL(options.endpoint || "/graphql", window.location.href).toString();
    this.token = options.token;
    this.org = null;
    this.cursor = null;
    this.shown = new Set();
    this.socket = null;
    this.live = false;
    this.liveCursor = null;
    this.retry = 0;
    this.chart = null;
    this.filters = readFilters(options.syncUrl !== false);
    this.syncUrl = options.syncUrl !== false;
    this.columns = readColumns();
    this.build();
  }

  function readFilters(fromUrl) {
    var params = fromUrl ? new URLSearchParams(window.location.search) : new URLSearchParams();
    var filters = {};
    FILTERS.forEach(function (key) {
      var value = params.get(key);
      if (value) filters[key] = value;
    });
    if (!filters.range && !filters.start && !filters.end) filters.range = "7d";
    return filters;
  }

  function readColumns() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(COLUMNS_KEY) || "null");
      if (Array.isArray(saved) && saved.length) {
        return saved.filter(function (c) { return COLUMNS.some(function (k) { return k[0] === c; }); });
      }
    } catch (e) { /* storage unavailable: defaults */ }
    return DEFAULT_COLUMNS.slice();
  }

  Viewer.prototype.build = function () {
    var self = this;
    this.root.textContent = "";
    this.root.classList.add("av-root");
    this.heading = el("h1", { id: "av-title" }, ["Activity"]);
    // Filters
    var f = this.filters;
    this.inputs = {
      range: el("select", { name: "range", "aria-label": "Time range" },
        RANGES.map(function (r) { return el("option", { value: r[0], selected: f.range === r[0] }, ["Last " + r[0]]); })
          .concat([el("option", { value: "custom", selected: !f.range }, ["Custom"])])),
      start: el("input", { type: "datetime-local", name: "start", "aria-label": "From" }),
      end: el("input", { type: "datetime-local", name: "end", "aria-label": "To" }),
      search: el("input", { type: "search", name: "search", maxlength: "200", placeholder: "Any text", "aria-label": "Search" }),
      action: el("input", { type: "text", name: "action", placeholder: "read, update", "aria-label": "Actions (comma separated)" }),
      status: el("select", { name: "status", "aria-label": "Status" }, [
        el("option", { value: "" }, ["Any"]),
        el("option", { value: "success", selected: f.status === "success" }, ["Success"]),
        el("option", { value: "error", selected: f.status === "error" }, ["Error"])
      ]),
      user: el("input", { type: "text", name: "user", placeholder: "usr_…", "aria-label": "User" }),
      workspace: el("input", { type: "text", name: "workspace", placeholder: "ws_…", "aria-label": "Workspace" }),
      app: el("input", { type: "text", name: "app", placeholder: "app_…", "aria-label": "App" }),
      endpoint: el("input", { type: "text", name: "endpoint", placeholder: "ep_…", "aria-label": "Endpoint" }),
      resource_type: el("input", { type: "text", name: "resource_type", placeholder: "app, endpoint…", "aria-label": "Resource type" }),
      resource_id: el("input", { type: "text", name: "resource_id", placeholder: "app_… or ep_…", "aria-label": "Resource (an app, endpoint or other id)" })
    };
    ["start", "end", "search", "action", "user", "workspace", "app", "endpoint", "resource_type", "resource_id"].forEach(function (key) {
      if (f[key]) self.inputs[key].value = f[key];
    });
    var apply = el("button", { type: "submit" }, ["Apply"]);
    var reset = el("button", { type: "button" }, ["Reset"]);
    reset.addEventListener("click", function () {
      self.filters = { range: "7d" };
      self.build();
      self.refresh();
    });
    var labelled = function (label, input) { return el("label", {}, [label, input]); };
    this.form = el("form", { class: "av-filters", role: "search", "aria-label": "Filters" }, [
      labelled("Time range", this.inputs.range),
      labelled("From", this.inputs.start),
      labelled("To", this.inputs.end),
      labelled("Search", this.inputs.search),
      labelled("Actions", this.inputs.action),
      labelled("Status", this.inputs.status),
      labelled("User", this.inputs.user),
      labelled("Workspace", this.inputs.workspace),
      labelled("App", this.inputs.app),
      labelled("Endpoint", this.inputs.endpoint),
      labelled("Resource type", this.inputs.resource_type),
      labelled("Resource", this.inputs.resource_id),
      apply,
      reset
    ]);
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.applyForm();
    });
    // Toolbar: live toggle, columns, figures
    this.liveButton = el("button", { type: "button", "aria-pressed": "false", "data-testid": "live" }, [
      el("span", { class: "av-live-dot", "aria-hidden": "true" }), "Live"
    ]);
    this.liveButton.addEventListener("click", function () { self.setLive(!self.live); });
    var chooser = el("fieldset", { hidden: true }, [el("legend", {}, ["Columns"])].concat(COLUMNS.map(function (c) {
      var box = el("input", { type: "checkbox", value: c[0], checked: self.columns.indexOf(c[0]) >= 0 });
      box.addEventListener("change", function () {
        self.columns = COLUMNS.map(function (k) { return k[0]; }).filter(function (k) {
          var input = chooser.querySelector("input[value='" + k + "']");
          return input && input.checked;
        });
        try { window.localStorage.setItem(COLUMNS_KEY, JSON.stringify(self.columns)); } catch (e) { /* not kept */ }
        self.renderTable();
      });
      return el("label", {}, [box, " " + c[1]]);
    })));
    var columnsButton = el("button", { type: "button", "aria-expanded": "false" }, ["Columns"]);
    columnsButton.addEventListener("click", function () {
      chooser.hidden = !chooser.hidden;
      columnsButton.setAttribute("aria-expanded", String(!chooser.hidden));
    });
    this.figures = el("div", { class: "av-figures", "aria-live": "polite", "data-testid": "figures" });
    this.exportButton = el("button", { type: "button", hidden: true, "data-testid": "export" }, ["Export"]);
    this.exportButton.addEventListener("click", function () { self.exportEvents(); });
    this.exportStatus = el("span", { role: "status", "aria-live": "polite", "data-testid": "export-status" });
    this.toolbar = el("div", { class: "av-toolbar" }, [this.liveButton, el("div", { class: "av-columns" }, [columnsButton, chooser]),
      this.exportButton, this.exportStatus, this.figures]);
    this.chartBox = el("div", { class: "av-chart", role: "img", "aria-label": "Requests and errors over time", "data-testid": "chart" });
    this.state = el("div", { class: "av-state", role: "status", "aria-live": "polite", "data-testid": "state", hidden: true });
    this.thead = el("thead");
    this.tbody = el("tbody");
    this.table = el("table", { class: "av-table", "aria-labelledby": "av-title", "data-testid": "events" }, [this.thead, this.tbody]);
    this.more = el("button", { type: "button", class: "av-more", hidden: true, "data-testid": "more" }, ["Load more"]);
    this.more.addEventListener("click", function () { self.loadPage(); });
    this.drawer = el("aside", { class: "av-drawer", role: "dialog", "aria-label": "Event", hidden: true, "data-testid": "drawer" });
    this.root.appendChild(this.heading);
    this.root.appendChild(this.form);
    this.root.appendChild(this.toolbar);
    this.root.appendChild(this.chartBox);
    this.root.appendChild(this.state);
    this.root.appendChild(el("div", { class: "av-table-wrap" }, [this.table]));
    this.root.appendChild(this.more);
    this.root.appendChild(this.drawer);
    this.rows = [];
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !self.drawer.hidden) self.closeDrawer();
    });
  };

  Viewer.prototype.applyForm = function () {
    var filters = {};
    var range = this.inputs.range.value;
    if (range !== "custom") filters.range = range;
    var self = this;
    FILTERS.slice(1).forEach(function (key) {
      var value = self.inputs[key].value.trim();
      if (value) filters[key] = value;
    });
    if (filters.start || filters.end) delete filters.range;
    if (!filters.range && !filters.start && !filters.end) filters.range = "7d";
    this.filters = filters;
    if (this.syncUrl) {
      var params = new URLSearchParams();
      Object.keys(filters).forEach(function (key) { params.set(key, filters[key]); });
      window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
    }
    this.refresh();
  };

  // The feed filter the form says, for GraphQL.
  Viewer.prototype.filterInput = function () {
    var f = this.filters;
    var filter = {};
    var hours = null;
    RANGES.forEach(function (r) { if (r[0] === f.range) hours = r[1]; });
    if (hours !== null) filter.startTime = new Date(Date.now() - hours * 3600 * 1000).toISOString();
    if (f.start) filter.startTime = new Date(f.start).toISOString();
    if (f.end) filter.endTime = new Date(f.end).toISOString();
    if (f.search) filter.search = f.search;
    if (f.action) filter.actions = f.action.split(",").map(function (a) { return a.trim(); }).filter(Boolean);
    if (f.status) filter.status = f.status.toUpperCase();
    if (f.user) filter.userIds = [f.user];
    if (f.workspace) filter.workspaceId = f.workspace;
    if (f.app) filter.appId = f.app;
    if (f.endpoint) filter.endpointId = f.endpoint;
    if (f.resource_type) filter.resourceTypes = [f.resource_type];
    if (f.resource_id) filter.resourceId = f.resource_id;
    return filter;
  };

  Viewer.prototype.summaryHours = function () {
    var hours = 168;
    var range = this.filters.range;
    RANGES.forEach(function (r) { if (r[0] === range) hours = r[1]; });
    return hours;
  };

  Viewer.prototype.gql = function (query, variables) {
    var self = this;
    return fetch(this.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + this.token },
      body: JSON.stringify({ query: query, variables: variables || {} }),
      credentials: "omit",
      referrerPolicy: "no-referrer"
    }).catch(function () {
      throw new ViewerError("unreachable", MESSAGES.unreachable);
    }).then(function (response) {
      if (response.status === 401) throw new ViewerError("expired", MESSAGES.expired);
      if (response.status === 403) throw new ViewerError("forbidden", MESSAGES.forbidden);
      return response.json().catch(function () {
        throw new ViewerError("unreachable", MESSAGES.unreachable);
      });
    }).then(function (body) {
      var errors = body.errors || [];
      if (errors.length) {
        var code = errors[0].extensions && errors[0].extensions.code;
        if (code === "AUTHENTICATION_FAILED") throw new ViewerError("expired", MESSAGES.expired);
        if (code === "FORBIDDEN") throw new ViewerError("forbidden", MESSAGES.forbidden);
        throw new ViewerError("error", text(errors[0].message));
      }
      self.clearState();
      return body.data;
    });
  };

  Viewer.prototype.showState = function (kind, message) {
    this.state.hidden = false;
    this.state.setAttribute("data-kind", kind);
    this.state.textContent = message;
  };

  Viewer.prototype.clearState = function () {
    if (this.state.getAttribute("data-kind") !== "empty") {
      this.state.hidden = true;
      this.state.removeAttribute("data-kind");
      this.state.textContent = "";
    }
  };

  Viewer.prototype.fail = function (error) {
    if (error instanceof ViewerError) {
      this.showState(error.kind, error.message);
      if (error.kind === "expired" || error.kind === "forbidden") {
        this.more.hidden = true;
        this.setLive(false);
      }
    } else {
      this.showState("error", text(error && error.message));
    }
  };

  Viewer.prototype.start = function () {
    var self = this;
    this.showState("loading", MESSAGES.loading);
    return this.gql(WHO).then(function (data) {
      var org = data.viewer && data.viewer.org;
      if (!org) throw new ViewerError("forbidden", MESSAGES.forbidden);
      self.org = org.id;
      self.heading.textContent = "Activity of " + text(org.name);
      self.exportButton.hidden = (data.viewer.permissions || []).indexOf("activity:export") < 0;
      return self.refresh();
    }).catch(function (error) { self.fail(error); });
  };

  Viewer.prototype.refresh = function () {
    this.cursor = null;
    this.rows = [];
    this.shown = new Set();
    this.renderTable();
    this.showState("loading", MESSAGES.loading);
    var live = this.live;
    if (live) this.setLive(false);
    var self = this;
    return Promise.all([this.loadPage(), this.loadSummary()]).then(function () {
      if (live) self.setLive(true);
    });
  };

  Viewer.prototype.loadPage = function () {
    var self = this;
    this.more.disabled = true;
    return this.gql(FEED, { org: this.org, first: PAGE_SIZE, after: this.cursor, filter: this.filterInput() })
      .then(function (data) {
        var page = data.org.activity;
        page.nodes.forEach(function (node) {
          if (!self.shown.has(node.id)) {
            self.shown.add(node.id);
            self.rows.push(node);
          }
        });
        self.cursor = page.pageInfo.endCursor;
        self.more.hidden = !page.pageInfo.hasNextPage;
        self.more.disabled = false;
        self.total = page.totalCount;
        self.renderTable();
        if (!self.rows.length) self.showState("empty", MESSAGES.empty);
        else if (self.state.getAttribute("data-kind") === "empty") {
          self.state.removeAttribute("data-kind");
          self.clearState();
        }
      })
      .catch(function (error) { self.more.disabled = false; self.fail(error); });
  };

  Viewer.prototype.loadSummary = function () {
    var self = this;
    var hours = this.summaryHours();
    return this.gql(SUMMARY, { org: this.org, hours: hours, filter: this.filterInput(), interval: hours > 48 ? "DAY" : "HOUR" })
      .then(function (data) { self.renderSummary(data.org.activitySummary); })
      .catch(function (error) { self.fail(error); });
  };

  Viewer.prototype.renderSummary = function (summary) {
    var starts = [], totals = [], errors = [];
    summary.buckets.forEach(function (b) {
      starts.push(Date.parse(b.start) / 1000);
      totals.push(b.totalRequests);
      errors.push(b.failedRequests);
    });
    var sum = function (list) { return list.reduce(function (a, b) { return a + b; }, 0); };
    var requests = sum(totals), failed = sum(errors);
    var p95 = summary.durationPercentiles && summary.durationPercentiles.p95;
    this.chartBox.setAttribute("data-start", summary.startTime);
    this.chartBox.setAttribute("data-end", summary.endTime);
    this.chartBox.setAttribute("data-requests", String(requests));
    this.chartBox.setAttribute("data-errors", String(failed));
    this.figures.textContent = "";
    var figure = function (label, value, id) {
      return el("span", {}, [label + " ", el("strong", { "data-testid": id }, [String(value)])]);
    };
    this.figures.appendChild(figure("Requests", requests, "requests"));
    this.figures.appendChild(figure("Errors", failed, "errors"));
    this.figures.appendChild(figure("p95", p95 === null || p95 === undefined ? "–" : p95 + " ms", "p95"));
    this.chartBox.textContent = "";
    if (window.uPlot && starts.length) {
      var width = Math.max(320, this.chartBox.clientWidth - 16);
      var style = getComputedStyle(this.root);
      this.chart = new window.uPlot({
        width: width,
        height: 180,
        scales: { x: { time: true } },
        series: [
          {},
          { label: "Requests", stroke: style.getPropertyValue("--accent").trim() || "#0969da", width: 2 },
          { label: "Errors", stroke: style.getPropertyValue("--error").trim() || "#cf222e", width: 2 }
        ],
        axes: [{ stroke: style.getPropertyValue("--muted").trim() }, { stroke: style.getPropertyValue("--muted").trim() }]
      }, [starts, totals, errors], this.chartBox);
    }
  };

  Viewer.prototype.renderTable = function () {
    var self = this;
    var columns = COLUMNS.filter(function (c) { return self.columns.indexOf(c[0]) >= 0; });
    this.thead.textContent = "";
    this.thead.appendChild(el("tr", {}, columns.map(function (c) { return el("th", { scope: "col" }, [c[1]]); })));
    this.tbody.textContent = "";
    this.rows.forEach(function (node) { self.tbody.appendChild(self.row(node, columns)); });
  };

  Viewer.prototype.row = function (node, columns) {
    var self = this;
    var tr = el("tr", { tabindex: "0", "data-id": node.id, "aria-label": "Event " + text(node.action) + " at " + text(node.timestamp) },
      columns.map(function (c) {
        var value = node[c[0]];
        var cls = c[0] === "statusCode" ? (node.success ? "av-ok" : "av-error") : null;
        return el("td", { class: cls, title: text(value) }, [text(value)]);
      }));
    var open = function () { self.openDrawer(node, tr); };
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        open();
      }
    });
    return tr;
  };

  Viewer.prototype.openDrawer = function (node, from) {
    var self = this;
    this.drawerFrom = from;
    this.drawer.textContent = "";
    var close = el("button", { type: "button", "aria-label": "Close the event" }, ["Close"]);
    close.addEventListener("click", function () { self.closeDrawer(); });
    var facts = el("dl");
    ["id", "logIndex", "timestamp", "action", "statusCode", "errorCode", "method", "path", "userId",
      "workspaceId", "appId", "endpointId", "augmentationId", "resourceType", "resourceId",
      "principalType", "principalId", "tokenType", "durationMs", "tokensTotal", "traceId"].forEach(function (key) {
      facts.appendChild(el("dt", {}, [key]));
      facts.appendChild(el("dd", {}, [text(node[key])]));
    });
    this.drawer.appendChild(el("h2", { id: "av-drawer-title" }, ["Event " + text(node.id)]));
    this.drawer.setAttribute("aria-labelledby", "av-drawer-title");
    this.drawer.appendChild(close);
    this.drawer.appendChild(facts);
    this.drawer.appendChild(el("h3", {}, ["Metadata"]));
    this.drawer.appendChild(el("pre", { "data-testid": "metadata" }, [JSON.stringify(node.metadata, null, 2)]));
    this.drawer.appendChild(el("h3", {}, ["Token usage"]));
    this.drawer.appendChild(el("pre", { "data-testid": "token-usage" }, [JSON.stringify(node.tokenUsage, null, 2)]));
    this.drawer.hidden = false;
    close.focus();
  };

  Viewer.prototype.closeDrawer = function () {
    this.drawer.hidden = true;
    if (this.drawerFrom) this.drawerFrom.focus();
  };

  // An export of every event the token may read: the job is started, its
  // progress shown until it is done, and its ZIP downloaded.
  Viewer.prototype.exportEvents = function () {
    var self = this;
    var base = new URL("/api/v5/artifacts/activity/", this.endpoint);
    var headers = { "Authorization": "Bearer " + this.token };
    var say = function (message) { self.exportStatus.textContent = message; };
    var checked = function (response) {
      if (response.status === 401) throw new ViewerError("expired", MESSAGES.expired);
      if (response.status === 403) throw new ViewerError("forbidden", MESSAGES.forbidden);
      if (response.status === 429) throw new ViewerError("error", "Too many exports are running; try again shortly.");
      if (!response.ok && response.status !== 202) throw new ViewerError("error", "The export failed (" + response.status + ").");
      return response;
    };
    var request = function (path, method) {
      return fetch(new URL(path, base).toString(), { method: method, headers: headers, credentials: "omit", referrerPolicy: "no-referrer" })
        .catch(function () { throw new ViewerError("unreachable", MESSAGES.unreachable); })
        .then(checked);
    };
    this.exportButton.disabled = true;
    say("Starting the export…");
    request("export", "POST").then(function (response) { return response.json(); }).then(function (job) {
      var poll = function () {
        return request("exports/" + encodeURIComponent(job.upload_id), "GET").then(function (response) {
          if (response.status === 202) {
            return response.json().then(function (state) {
              say("Exporting… " + Math.round((state.progress || 0) * 100) + "%");
              return new Promise(function (resolve) { setTimeout(resolve, 500); }).then(poll);
            });
          }
          return response.blob().then(function (zip) {
            var link = el("a", { href: URL.createObjectURL(zip), download: job.file_name, hidden: true });
            document.body.appendChild(link);
            link.click();
            link.remove();
            self.exportStatus.setAttribute("data-file", job.file_name);
            self.exportStatus.setAttribute("data-bytes", String(zip.size));
            say("Downloaded " + job.file_name + " (" + zip.size + " bytes)");
          });
        });
      };
      return poll();
    }).catch(function (error) {
      say("");
      self.fail(error);
    }).then(function () { self.exportButton.disabled = false; });
  };

  // The live tail: graphql-transport-ws on the same endpoint, resumed from
  // the last event it delivered after a dropped connection.
  Viewer.prototype.setLive = function (on) {
    this.live = on;
    this.liveButton.setAttribute("aria-pressed", String(on));
    this.liveButton.querySelector(".av-live-dot").setAttribute("data-on", String(on));
    if (on) {
      this.liveCursor = null;
      this.connect();
    } else if (this.socket) {
      var socket = this.socket;
      this.socket = null;
      socket.close(1000);
    }
  };

  Viewer.prototype.connect = function () {
    var self = this;
    var url = new URL(this.endpoint);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(url.toString(), "graphql-transport-ws");
    this.socket = socket;
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: "Bearer " + self.token } }));
    });
    socket.addEventListener("message", function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "connection_ack") {
        self.retry = 0;
        socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: {
          query: TAIL, variables: { org: self.org, filter: self.filterInput(), after: self.liveCursor } } }));
        self.liveButton.setAttribute("data-connected", "true");
      } else if (message.type === "next" && message.payload && message.payload.data) {
        var edge = message.payload.data.activityAdded;
        self.liveCursor = edge.cursor;
        if (!self.shown.has(edge.node.id)) {
          self.shown.add(edge.node.id);
          self.rows.unshift(edge.node);
          self.renderTable();
          if (self.state.getAttribute("data-kind") === "empty") {
            self.state.removeAttribute("data-kind");
            self.clearState();
          }
        }
      } else if (message.type === "error") {
        self.fail(new ViewerError("error", text(message.payload && message.payload[0] && message.payload[0].message)));
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      }
    });
    socket.addEventListener("close", function (event) {
      self.liveButton.removeAttribute("data-connected");
      if (self.socket !== socket || !self.live) return;
      if (event.code === 4403 || event.code === 4401) {
        self.fail(new ViewerError("expired", MESSAGES.expired));
        return;
      }
      // Dropped: back again from the last event seen, after a pause.
      var wait = Math.min(10000, 500 * Math.pow(2, self.retry++));
      setTimeout(function () { if (self.live && self.socket === socket) self.connect(); }, wait);
    });
  };

  var api = {
    /** Renders the viewer into `element` with `{ token, endpoint }`. */
    mount: function (element, options) {
      var viewer = new Viewer(element, options || {});
      if (viewer.token) viewer.start();
      else viewer.showState("waiting", MESSAGES.waiting);
      return viewer;
    }
  };
  window.ActivityViewer = api;

  // The page at /viewer: the token from the fragment (then kept for this
  // tab only and taken out of the address), or sent by postMessage.
  function autostart() {
    var root = document.querySelector("[data-autostart='true']");
    if (!root) return;
    var hash = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var token = hash.get("token");
    if (token) {
      try { window.sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* not kept */ }
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    } else {
      try { token = window.sessionStorage.getItem(TOKEN_KEY); } catch (e) { token = null; }
    }
    var viewer = api.mount(root, { endpoint: root.getAttribute("data-endpoint") || "/graphql", token: token });
    // The page's viewer, for scripting it (and for its tests).
    api.current = viewer;
    window.addEventListener("message", function (event) {
      var data = event.data;
      if (!data || data.type !== "activity-viewer:token" || typeof data.token !== "string") return;
      try { window.sessionStorage.setItem(TOKEN_KEY, data.token); } catch (e) { /* not kept */ }
      viewer.token = data.token;
      viewer.start();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autostart);
  else autostart();
})();
