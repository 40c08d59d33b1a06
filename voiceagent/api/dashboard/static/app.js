/* voiceagent dashboard: plain JS, no dependencies, no inline handlers (CSP: script-src 'self'). */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var strings = {};
  try {
    strings = JSON.parse(document.getElementById("i18n").textContent || "{}");
  } catch (e) {
    strings = {};
  }

  function T(key, values) {
    var text = strings[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function csrf() {
    var meta = $('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function errorMessage(body, status) {
    if (body && body.error && body.error.message) return body.error.message;
    return "HTTP " + status;
  }

  function api(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrf();
    if (body) init.body = body;
    return fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = null;
        }
        if (!response.ok) {
          var err = new Error(errorMessage(data, response.status));
          err.status = response.status;
          throw err;
        }
        return data;
      });
    });
  }

  function clock(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var m = Math.floor(s / 60);
    var rest = s % 60;
    return m + ":" + (rest < 10 ? "0" : "") + rest;
  }

  /* Header: log out. */
  function initLogout() {
    var button = $("#logout");
    if (!button) return;
    button.addEventListener("click", function () {
      api("DELETE", "/api/session").then(
        function () { window.location.assign("/ui/login"); },
        function () { window.location.assign("/ui/login"); }
      );
    });
  }

  /* Login. */
  function initLogin() {
    var form = $("#login-form");
    if (!form) return;
    var error = $("#login-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.textContent = "";
      fetch("/api/session", { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) {
          if (response.ok) {
            window.location.assign(form.getAttribute("data-next") || "/ui/live");
          } else {
            error.textContent = T("login_failed");
            $("#login-password").focus();
          }
        })
        .catch(function () { error.textContent = T("network"); });
    });
  }

  /* Live calls: poll every 2 s, tick durations every 0.5 s. */
  function initLive() {
    var body = $("#live-rows");
    if (!body) return;
    var empty = $("#live-empty");
    var updated = $("#live-updated");
    var problem = $("#live-error");
    var fetchedAt = 0;

    function render(data) {
      fetchedAt = performance.now();
      body.textContent = "";
      data.items.forEach(function (item) {
        var row = el("tr", { "data-call-id": item.call_id });
        var head = el("th", { scope: "row" });
        head.appendChild(el("a", { href: "/ui/calls/" + encodeURIComponent(item.call_id) }, item.call_id));
        row.appendChild(head);
        row.appendChild(el("td", {}, item.campaign_id === null ? "—" : item.campaign_id));
        row.appendChild(el("td", { "class": "state" }, T("state_" + item.status)));
        row.appendChild(el("td", { "class": "dialog-state" }, item.dialog_state || "—"));
        row.appendChild(el("td", { "class": "duration num", "data-ms": item.duration_ms }, clock(item.duration_ms)));
        var last = item.last_utterance;
        var said = el("td", { "class": "last" });
        if (last) {
          said.appendChild(el("strong", {}, T(last.speaker === "agent" ? "agent" : "debtor") + ": "));
          said.appendChild(document.createTextNode(last.text || ""));
        } else {
          said.textContent = "—";
        }
        row.appendChild(said);
        body.appendChild(row);
      });
      empty.hidden = data.items.length > 0;
      updated.textContent = T("updated", { time: new Date().toLocaleTimeString() });
      problem.textContent = "";
    }

    function tick() {
      var since = performance.now() - fetchedAt;
      body.querySelectorAll("td.duration").forEach(function (cell) {
        cell.textContent = clock(Number(cell.getAttribute("data-ms")) + since);
      });
    }

    function poll() {
      api("GET", "/api/live")
        .then(render)
        .catch(function (err) {
          problem.textContent = T("failed", { message: err.message });
          if (err.status === 401) window.location.assign("/ui/login?next=%2Fui%2Flive");
        })
        .then(function () { window.setTimeout(poll, 2000); });
    }
    poll();
    window.setInterval(tick, 500);
  }

  /* Campaigns: start / pause. */
  function initCampaigns() {
    var problem = $("#campaign-error");
    document.querySelectorAll(".campaign-action").forEach(function (button) {
      button.addEventListener("click", function () {
        button.disabled = true;
        var url = "/api/campaigns/" + button.getAttribute("data-id") + "/" + button.getAttribute("data-action");
        api("POST", url)
          .then(function () { window.location.reload(); })
          .catch(function (err) {
            button.disabled = false;
            problem.textContent = T("failed", { message: err.message });
          });
      });
    });
  }

  /* Metrics: one SVG line chart per <figure class="chart" data-series="a,b">. */
  function initCharts() {
    var source = $("#metric-series");
    if (!source) return;
    var series = JSON.parse(source.textContent || "[]");
    var names = {};
    var tpl = $("#series-names");
    if (tpl) {
      tpl.content.querySelectorAll("[data-key]").forEach(function (span) {
        names[span.getAttribute("data-key")] = span.textContent;
      });
    }
    document.querySelectorAll("figure.chart").forEach(function (figure) {
      drawChart(figure, series, figure.getAttribute("data-series").split(","), figure.getAttribute("data-kind"), names);
    });
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    return node;
  }

  function drawChart(figure, rows, keys, kind, names) {
    var W = 420, H = 180, L = 44, R = 10, TOP = 10, B = 34;
    var max = 0;
    rows.forEach(function (row) {
      keys.forEach(function (k) {
        var v = row[k];
        if (typeof v === "number" && v > max) max = v;
      });
    });
    if (kind === "ratio") max = Math.max(max, 1);
    if (max <= 0) max = 1;
    var chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "class": "chart-svg" });
    var title = svg("title", {});
    title.textContent = figure.querySelector("figcaption").textContent;
    chart.appendChild(title);
    var plotW = W - L - R, plotH = H - TOP - B;
    var x = function (i) { return L + (rows.length < 2 ? plotW / 2 : (i * plotW) / (rows.length - 1)); };
    var y = function (v) { return TOP + plotH - (v / max) * plotH; };
    [0, 0.5, 1].forEach(function (f) {
      var v = max * f;
      chart.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), "class": "grid" }));
      var label = svg("text", { x: L - 4, y: y(v) + 4, "class": "axis", "text-anchor": "end" });
      label.textContent = kind === "ratio" ? Math.round(v * 100) + "%" : (v >= 10 ? Math.round(v) : v.toFixed(1));
      chart.appendChild(label);
    });
    var step = Math.max(1, Math.ceil(rows.length / 7));
    rows.forEach(function (row, i) {
      var lastIndex = rows.length - 1;
      if (i !== lastIndex && (i % step !== 0 || lastIndex - i < step)) return;
      var label = svg("text", { x: x(i), y: H - 16, "class": "axis", "text-anchor": "middle" });
      label.textContent = row.day.slice(5);
      chart.appendChild(label);
    });
    keys.forEach(function (k, n) {
      var points = [];
      rows.forEach(function (row, i) {
        if (typeof row[k] === "number") points.push([x(i), y(row[k]), row.day, row[k]]);
      });
      if (points.length > 1) {
        chart.appendChild(svg("polyline", {
          points: points.map(function (p) { return p[0] + "," + p[1]; }).join(" "),
          "class": "series s" + n
        }));
      }
      points.forEach(function (p) {
        var dot = svg("circle", { cx: p[0], cy: p[1], r: 3, "class": "dot s" + n });
        var tip = svg("title", {});
        tip.textContent = (names[k] || k) + " " + p[2] + ": " + (kind === "ratio" ? (p[3] * 100).toFixed(1) + "%" : p[3]);
        dot.appendChild(tip);
        chart.appendChild(dot);
      });
      var legend = svg("text", { x: L + n * 120, y: H - 2, "class": "legend s" + n });
      legend.textContent = "■ " + (names[k] || k);
      chart.appendChild(legend);
    });
    figure.insertBefore(chart, figure.firstChild);
  }

  /* Call detail: waveform (Web Audio decode of the WAV, debtor left, agent right) and transcript. */
  function initCall() {
    var player = $("#player");
    var canvas = $("#waveform");
    var list = $("#transcript");
    if (player && canvas) initWaveform(player, canvas);
    if (list) initTranscript(list, player);
  }

  function initWaveform(player, canvas) {
    var peaks = null;
    var ctx = canvas.getContext("2d");
    var lanes = [canvas.getAttribute("data-debtor"), canvas.getAttribute("data-agent")];

    function draw() {
      var W = canvas.width, H = canvas.height, lane = H / 2;
      ctx.clearRect(0, 0, W, H);
      if (!peaks) return;
      peaks.forEach(function (channel, c) {
        var mid = lane * c + lane / 2;
        ctx.fillStyle = c === 0 ? "#2a6f97" : "#7b2cbf";
        for (var i = 0; i < channel.length; i++) {
          var h = Math.max(1, channel[i] * (lane / 2 - 4));
          ctx.fillRect(i, mid - h, 1, 2 * h);
        }
        ctx.fillStyle = "#333";
        ctx.font = "12px sans-serif";
        ctx.fillText(lanes[c] || "", 4, lane * c + 14);
      });
      var duration = player.duration || 0;
      if (duration > 0) {
        var px = (player.currentTime / duration) * W;
        ctx.fillStyle = "#d62828";
        ctx.fillRect(px, 0, 2, H);
        canvas.setAttribute("aria-valuenow", String(Math.round((100 * player.currentTime) / duration)));
      }
    }

    function computePeaks(buffer) {
      var width = canvas.width;
      var out = [];
      var channels = Math.min(2, buffer.numberOfChannels);
      for (var c = 0; c < 2; c++) {
        var data = buffer.getChannelData(Math.min(c, channels - 1));
        var per = Math.max(1, Math.floor(data.length / width));
        var lane = new Float32Array(width);
        for (var i = 0; i < width; i++) {
          var peak = 0;
          for (var j = i * per; j < Math.min(data.length, (i + 1) * per); j++) {
            var v = Math.abs(data[j]);
            if (v > peak) peak = v;
          }
          lane[i] = peak;
        }
        out.push(lane);
      }
      return out;
    }

    fetch(canvas.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.arrayBuffer();
      })
      .then(function (bytes) {
        var Ctx = window.AudioContext || window.webkitAudioContext;
        var audio = new Ctx();
        return audio.decodeAudioData(bytes).then(function (buffer) {
          if (audio.close) audio.close();
          return buffer;
        });
      })
      .then(function (buffer) {
        peaks = computePeaks(buffer);
        canvas.setAttribute("data-drawn", "true");
        draw();
      })
      .catch(function () {
        $("#waveform-error").textContent = T("decode_failed");
      });

    function seekTo(fraction) {
      if (player.duration > 0) player.currentTime = Math.max(0, Math.min(1, fraction)) * player.duration;
      draw();
    }
    canvas.addEventListener("click", function (event) {
      var box = canvas.getBoundingClientRect();
      seekTo((event.clientX - box.left) / box.width);
    });
    canvas.addEventListener("keydown", function (event) {
      var d = player.duration || 0;
      if (!d) return;
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        event.preventDefault();
        var delta = event.key === "ArrowRight" ? 5 : -5;
        seekTo((player.currentTime + delta) / d);
      } else if (event.key === " " || event.key === "Enter") {
        event.preventDefault();
        if (player.paused) player.play(); else player.pause();
      }
    });
    ["timeupdate", "seeked", "loadedmetadata"].forEach(function (name) {
      player.addEventListener(name, draw);
    });
    function frame() {
      if (!player.paused) draw();
      window.requestAnimationFrame(frame);
    }
    window.requestAnimationFrame(frame);
  }

  function initTranscript(list, player) {
    list.appendChild(el("li", { "class": "muted" }, T("loading")));
    api("GET", list.getAttribute("data-src"))
      .then(function (data) {
        list.textContent = "";
        if (!data.lines.length) list.appendChild(el("li", { "class": "muted" }, T("no_transcript")));
        data.lines.forEach(function (line) {
          var item = el("li", { "class": "line " + (line.speaker === "agent" ? "agent" : "debtor") });
          var button = el("button", {
            type: "button",
            "class": "seek",
            "data-start-ms": line.start_ms,
            "data-end-ms": line.end_ms === undefined || line.end_ms === null ? "" : line.end_ms
          });
          button.appendChild(el("time", {}, clock(line.start_ms)));
          button.appendChild(el("strong", {}, " " + T(line.speaker === "agent" ? "agent" : "debtor") + ": "));
          button.appendChild(document.createTextNode(line.text));
          button.addEventListener("click", function () {
            if (!player) return;
            player.currentTime = line.start_ms / 1000;
            var started = player.play();
            if (started && started.catch) started.catch(function () {});
          });
          item.appendChild(button);
          list.appendChild(item);
        });
      })
      .catch(function (err) {
        list.textContent = "";
        list.appendChild(el("li", { "class": "error" }, T("failed", { message: err.message })));
      });
    if (!player) return;
    player.addEventListener("timeupdate", function () {
      var ms = player.currentTime * 1000;
      list.querySelectorAll("button.seek").forEach(function (b) {
        var start = Number(b.getAttribute("data-start-ms"));
        var endRaw = b.getAttribute("data-end-ms");
        var end = endRaw === "" ? start + 1 : Number(endRaw);
        b.classList.toggle("current", ms >= start && ms < end);
      });
    });
  }

  /* Upload a call list: XHR for upload progress, then the import summary and rejected rows. */
  function initUpload() {
    var form = $("#upload-form");
    if (!form) return;
    var bar = $("#u-progress");
    var status = $("#u-status");
    var result = $("#u-result");
    var submit = $("#u-submit");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(form);
      if (!data.get("region")) data.delete("region");
      else data.set("region", String(data.get("region")).toUpperCase());
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/lists");
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      });
      xhr.upload.addEventListener("load", function () {
        bar.value = 100;
        status.textContent = T("importing");
      });
      xhr.addEventListener("load", function () {
        submit.disabled = false;
        var body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (e) {
          body = null;
        }
        if (xhr.status >= 200 && xhr.status < 300 && body) showResult(body);
        else status.textContent = T("failed", { message: errorMessage(body, xhr.status) });
      });
      xhr.addEventListener("error", function () {
        submit.disabled = false;
        status.textContent = T("network");
      });
      submit.disabled = true;
      bar.value = 0;
      result.textContent = "";
      status.textContent = T("uploading");
      xhr.send(data);
    });

    function showResult(body) {
      status.textContent = "";
      var summary = el("p", { id: "u-summary", "class": "summary" }, T("imported", {
        imported: body.imported,
        duplicates: body.duplicates,
        rejected: body.rejected.length
      }));
      result.appendChild(summary);
      if (!body.rejected.length) return;
      var table = el("table", { "class": "data", id: "u-errors" });
      table.appendChild(el("caption", {}, T("rejected_rows")));
      var head = el("tr");
      head.appendChild(el("th", { scope: "col" }, T("line")));
      head.appendChild(el("th", { scope: "col" }, T("reason")));
      table.appendChild(el("thead")).appendChild(head);
      var tbody = table.appendChild(el("tbody"));
      body.rejected.forEach(function (r) {
        var row = el("tr", { "data-line": r.line });
        row.appendChild(el("td", { "class": "num" }, r.line));
        row.appendChild(el("td", {}, r.reason));
        tbody.appendChild(row);
      });
      result.appendChild(table);
      result.appendChild(el("a", {
        id: "u-error-file",
        href: "/ui/lists/" + body.call_list_id + "/errors.csv",
        download: ""
      }, T("download_errors")));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    initLogout();
    initLogin();
    initLive();
    initCampaigns();
    initCharts();
    initCall();
    initUpload();
  });
})();
