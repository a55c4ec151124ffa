/* effnas report: the Pareto front and the scaling curves as inline SVG, from the JSON that
   experiments/report/explorable.py embeds. Labels and tooltip text come formatted from Python. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 720, H = 400, L = 64, R = 16, T = 14, B = 46;

  function svgEl(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function short(v) {
    var units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(v) >= units[i][0]) { return +(v / units[i][0]).toPrecision(3) + units[i][1]; }
    }
    return String(+v.toPrecision(3));
  }

  /* Axes on a new SVG: log x, linear y (in %). Returns the svg and the two scale functions. */
  function axes(box, xs, ys, xlabel, ylabel) {
    var lx0 = Math.log10(Math.min.apply(null, xs)), lx1 = Math.log10(Math.max.apply(null, xs));
    var pad = Math.max(0.05, (lx1 - lx0) * 0.06);
    lx0 -= pad; lx1 += pad;
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var yp = Math.max(0.005, (y1 - y0) * 0.08);
    y0 -= yp; y1 += yp;
    var svg = svgEl("svg", {"viewBox": "0 0 " + W + " " + H, "class": "er-plot", "role": "img"}, box);
    function sx(x) { return L + (Math.log10(x) - lx0) / (lx1 - lx0) * (W - L - R); }
    function sy(y) { return T + (y1 - y) / (y1 - y0) * (H - T - B); }
    svgEl("rect", {"x": L, "y": T, "width": W - L - R, "height": H - T - B, "class": "er-frame"}, svg);
    function ticks(subs) {
      var out = [];
      for (var e = Math.floor(lx0); e <= Math.ceil(lx1); e++) {
        subs.forEach(function (m) {
          var v = m * Math.pow(10, e), lv = Math.log10(v);
          if (lv >= lx0 && lv <= lx1) { out.push(v); }
        });
      }
      return out;
    }
    var xt = ticks([1, 2, 5]);
    if (xt.length < 3) { xt = ticks([1, 2, 3, 4, 5, 6, 7, 8, 9]); }  // a narrow range: every digit
    xt.forEach(function (v) {
      svgEl("line", {"x1": sx(v), "x2": sx(v), "y1": T, "y2": H - B, "class": "er-grid"}, svg);
      svgEl("text", {"x": sx(v), "y": H - B + 16, "class": "er-tick", "text-anchor": "middle"}, svg)
        .textContent = short(v);
    });
    var step = Math.pow(10, Math.floor(Math.log10((y1 - y0) * 100 / 4)));
    if ((y1 - y0) * 100 / step > 8) { step *= 2; }
    for (var t = Math.ceil(y0 * 100 / step) * step; t <= y1 * 100; t += step) {
      svgEl("line", {"x1": L, "x2": W - R, "y1": sy(t / 100), "y2": sy(t / 100), "class": "er-grid"}, svg);
      svgEl("text", {"x": L - 6, "y": sy(t / 100) + 4, "class": "er-tick", "text-anchor": "end"}, svg)
        .textContent = +t.toFixed(4) + " %";
    }
    svgEl("text", {"x": (L + W - R) / 2, "y": H - 8, "class": "er-label", "text-anchor": "middle"}, svg)
      .textContent = xlabel;
    svgEl("text", {"x": 14, "y": (T + H - B) / 2, "class": "er-label", "text-anchor": "middle",
                   "transform": "rotate(-90 14 " + (T + H - B) / 2 + ")"}, svg).textContent = ylabel;
    return {svg: svg, sx: sx, sy: sy};
  }

  function tooltip(box) {
    var tip = document.createElement("div");
    tip.className = "er-tip";
    tip.hidden = true;
    box.appendChild(tip);
    return {
      show: function (lines, evt) {
        tip.textContent = "";
        lines.forEach(function (l) { var d = document.createElement("div"); d.textContent = l; tip.appendChild(d); });
        var r = box.getBoundingClientRect(), x = evt.clientX - r.left, y = evt.clientY - r.top;
        tip.hidden = false;
        // Right of the pointer, or left of it where the box would cut the tooltip off.
        tip.style.left = (x + 12 + tip.offsetWidth > r.width ? Math.max(0, x - 12 - tip.offsetWidth) : x + 12) + "px";
        tip.style.top = (y + 12) + "px";
      },
      hide: function () { tip.hidden = true; }
    };
  }

  function pareto(box, data) {
    if (!data.trials.length) { box.textContent = "No finished trial."; return; }
    box.classList.add("er-box");
    var xs = data.trials.map(function (t) { return t.macs; });
    if (data.target) { xs.push(data.target); }
    var a = axes(box, xs, data.trials.map(function (t) { return t.value; }), "MACs (multiply-adds per image)",
                 data.ylabel);  // what the search measured: an accuracy, or a proxy's or supernet's score
    if (data.target) {
      svgEl("line", {"x1": a.sx(data.target), "x2": a.sx(data.target), "y1": T, "y2": H - B,
                     "class": "er-target"}, a.svg);
    }
    var byNumber = {};
    data.trials.forEach(function (t) { byNumber[t.number] = t; });
    var front = data.front.map(function (n) { return byNumber[n]; });  // by increasing MACs
    svgEl("polyline", {"class": "er-front", "points": front.map(function (t) {
      return a.sx(t.macs) + "," + a.sy(t.value); }).join(" ")}, a.svg);
    var tip = tooltip(box);
    var panel = document.createElement("div");
    panel.className = "er-spec";
    panel.hidden = true;
    box.appendChild(panel);
    data.trials.forEach(function (t) {
      var c = svgEl("circle", {"cx": a.sx(t.macs), "cy": a.sy(t.value), "r": t.front ? 6 : 4.5,
                               "class": "er-trial" + (t.front ? " er-on-front" : ""), "data-trial": t.number}, a.svg);
      c.addEventListener("mouseenter", function (e) { tip.show(t.tip, e); });
      c.addEventListener("mouseleave", tip.hide);
      c.addEventListener("click", function () { showSpec(panel, t); });
    });
    var legend = document.createElement("p");
    legend.className = "er-note";
    legend.textContent = data.trials.length + " finished trials, " + front.length + " on the front (red)" +
      (data.target ? "; dashed: target T" : "") + ". Hover a trial for its numbers, click it for its spec JSON.";
    box.appendChild(legend);
  }

  function showSpec(panel, t) {
    panel.textContent = "";
    panel.hidden = false;
    var h = document.createElement("div");
    h.className = "er-spec-head";
    h.textContent = "trial " + t.number + " spec (effnas accepts this file wherever it takes a model) ";
    var btn = document.createElement("button");
    btn.type = "button";
    btn.className = "er-copy";
    btn.textContent = "copy";
    var pre = document.createElement("textarea");
    pre.readOnly = true;
    pre.className = "er-spec-json";
    pre.value = t.spec || "(no spec recorded for this trial)";
    pre.rows = 14;
    btn.addEventListener("click", function () {
      pre.select();
      var done = function () { btn.textContent = "copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(pre.value).then(done, function () {
          btn.textContent = document.execCommand("copy") ? "copied" : "selected: press Ctrl+C";
        });
      } else {
        btn.textContent = document.execCommand("copy") ? "copied" : "selected: press Ctrl+C";
      }
    });
    h.appendChild(btn);
    panel.appendChild(h);
    panel.appendChild(pre);
  }

  function curves(box, data) {
    box.classList.add("er-box");
    var state = {axis: "macs", band: true, off: {}};
    var controls = document.createElement("div");
    controls.className = "er-controls";
    box.appendChild(controls);
    var plot = document.createElement("div");
    box.appendChild(plot);
    var fitsNote = document.createElement("div");
    fitsNote.className = "er-note er-fits";
    box.appendChild(fitsNote);

    function check(label, cls, checked, onchange, colour) {
      var l = document.createElement("label");
      l.className = "er-toggle";
      var i = document.createElement("input");
      i.type = "checkbox";
      i.className = cls;
      i.checked = checked;
      i.addEventListener("change", function () { onchange(i.checked); });
      l.appendChild(i);
      var s = document.createElement("span");
      s.textContent = label;
      if (colour) { s.style.borderBottom = "3px solid " + colour; }
      l.appendChild(s);
      controls.appendChild(l);
      return i;
    }
    data.methods.forEach(function (m) {
      var i = check(m.method, "er-method", true, function (on) { state.off[m.method] = !on; draw(); }, m.colour);
      i.setAttribute("data-method", m.method);
    });
    check("fit band (90 %)", "er-band", true, function (on) { state.band = on; draw(); });
    var sel = document.createElement("select");
    sel.className = "er-axis";
    data.axes.forEach(function (ax) {
      var o = document.createElement("option");
      o.value = ax;
      o.textContent = "against " + (ax === "macs" ? "MACs" : "parameters");
      sel.appendChild(o);
    });
    sel.addEventListener("change", function () { state.axis = sel.value; draw(); });
    controls.appendChild(sel);

    function draw() {
      plot.textContent = "";
      var ax = state.axis, xs = [], ys = [];
      data.methods.forEach(function (m) {
        m[ax].points.forEach(function (p) {
          xs.push(p.x); ys.push(p.y);
          if (p.lo !== null && p.hi !== null) { ys.push(p.lo); ys.push(p.hi); }
        });
        m[ax].line.forEach(function (r) { xs.push(r[0]); ys.push(r[1]); });
      });
      var a = axes(plot, xs, ys, ax === "macs" ? "MACs (multiply-adds per image)" : "parameters",
                   data.metric + " (mean, bars " + data.interval + "; hollow: n = 1)");
      var tip = tooltip(plot);
      var notes = [];
      data.methods.forEach(function (m) {
        var g = svgEl("g", {"class": "er-method-group", "data-method": m.method}, a.svg);
        if (state.off[m.method]) { g.style.display = "none"; return; }
        var line = m[ax].line;
        var banded = line.filter(function (r) { return r[2] !== null && r[3] !== null; });
        if (state.band && banded.length) {
          var up = banded.map(function (r) { return a.sx(r[0]) + "," + a.sy(r[3]); });
          var down = banded.slice().reverse().map(function (r) { return a.sx(r[0]) + "," + a.sy(r[2]); });
          svgEl("polygon", {"points": up.concat(down).join(" "), "fill": m.colour, "class": "er-band-area"}, g);
        }
        if (line.length) {
          var fit = svgEl("polyline", {"points": line.map(function (r) { return a.sx(r[0]) + "," + a.sy(r[1]); })
                                         .join(" "), "stroke": m.colour, "class": "er-fit"}, g);
          if (m[ax].dashed) { fit.setAttribute("stroke-dasharray", "5 3"); }  // a parameter at its bound
        }
        m[ax].points.forEach(function (p) {
          var one = p.lo === null || p.hi === null;  // one run: no interval, a hollow point
          if (!one) {
            svgEl("line", {"x1": a.sx(p.x), "x2": a.sx(p.x), "y1": a.sy(p.lo), "y2": a.sy(p.hi),
                           "stroke": m.colour, "class": "er-err"}, g);
          }
          var c = svgEl("circle", {"cx": a.sx(p.x), "cy": a.sy(p.y), "r": 4.5, "fill": one ? "white" : m.colour,
                                   "stroke": m.colour, "class": "er-point"}, g);
          c.addEventListener("mouseenter", function (e) { tip.show([p.tip], e); });
          c.addEventListener("mouseleave", tip.hide);
        });
        notes.push(m.method + ": " + m[ax].fit);
      });
      fitsNote.textContent = notes.join(" \u00b7 ");
    }
    draw();
  }

  function each(cls, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(cls), function (box) {
      fn(box, JSON.parse(document.getElementById(box.getAttribute("data-source")).textContent));
    });
  }
  each(".effnas-pareto", pareto);
  each(".effnas-curves", curves);
}());
