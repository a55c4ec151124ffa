/* effnas architecture viewer. Renders the numbers that experiments/report/viewer.py embeds as JSON
   (one entry per phi); it computes nothing but text and bar lengths. No network access. */
(function () {
  "use strict";

  function fmtInt(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { e.textContent = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { e.appendChild(c); } });
    return e;
  }

  function field(label, cls, value) {
    return el("div", {"class": "ev-field"}, [el("span", {"class": "ev-key", text: label}),
                                              el("span", {"class": cls, text: value})]);
  }

  function shape(p) {
    return p.kind === "classifier" ? String(p.out_channels)
      : p.out_channels + "\u00d7" + p.out_resolution + "\u00d7" + p.out_resolution;
  }

  function mount(root, data) {
    var members = data.members;
    var selected = null;  // the clicked block's name, kept across phi
    var slider = el("input", {"type": "range", "class": "ev-phi", "min": "0", "max": String(members.length - 1),
                              "step": "1", "value": "0", "aria-label": "compound coefficient phi"});
    var label = el("span", {"class": "ev-label"});
    var how = data.official ? "official EfficientNet table (hand-rounded; repeats rounded up)"
      : "d = \u03b1^\u03c6, w = \u03b2^\u03c6, r = \u03b3^\u03c6 with \u03b1, \u03b2, \u03b3 = " +
        data.coefficients.alpha + ", " + data.coefficients.beta + ", " + data.coefficients.gamma +
        " (\u03b1\u03b2\u00b2\u03b3\u00b2 = " + data.coefficients.product + "; repeats " +
        (data.depth_rounding === "round" ? "rounded to nearest" : "rounded up") + ")";
    var controls = el("div", {"class": "ev-controls"}, [
      el("label", {"class": "ev-slider"}, [el("span", {text: data.official ? "member " : "\u03c6 "}), slider]),
      label, el("span", {"class": "ev-how", text: how})]);
    var factors = el("div", {"class": "ev-factors"});
    var stages = el("div", {"class": "ev-stages"});
    var details = el("div", {"class": "ev-details", "hidden": ""});
    root.appendChild(controls);
    root.appendChild(factors);
    root.appendChild(stages);
    root.appendChild(details);
    if (data.source) { root.appendChild(el("p", {"class": "ev-source", text: "base: " + data.source})); }

    function findBlock(m, name) {
      for (var i = 0; i < m.parts.length; i++) {
        for (var j = 0; j < m.parts[i].blocks.length; j++) {
          if (m.parts[i].blocks[j].name === name) { return m.parts[i].blocks[j]; }
        }
      }
      return null;
    }

    function showDetails(m) {
      var b = selected && findBlock(m, selected);
      details.textContent = "";
      if (!b) { details.hidden = true; return; }
      details.hidden = false;
      var stageNo = Number(b.name.split(".")[1]) + 1;
      var close = el("button", {"class": "ev-close", "type": "button", "aria-label": "close", text: "\u00d7"});
      close.addEventListener("click", function () { selected = null; render(); });
      details.appendChild(close);
      details.appendChild(el("h3", {text: "Block " + (b.index + 1) + " of " + m.blocks + " (stage " + stageNo +
                                          ", " + b.name + ")"}));
      [["operator", "ev-d-op", b.op], ["kernel", "ev-d-kernel", b.kernel + "\u00d7" + b.kernel],
       ["stride", "ev-d-stride", String(b.stride)], ["expansion", "ev-d-expansion", String(b.expansion)],
       ["SE ratio", "ev-d-se", String(b.se_ratio)],
       ["channels", "ev-d-channels", b.in_channels + " \u2192 " + b.out_channels],
       ["output", "ev-d-out", b.out_channels + "\u00d7" + b.out_resolution + "\u00d7" + b.out_resolution],
       ["shortcut", "ev-d-shortcut", b.shortcut],
       ["stochastic-depth rate", "ev-d-drop", b.drop_rate + (b.shortcut === "none" ? " (no shortcut: unused)" : "")],
       ["params", "ev-d-params", fmtInt(b.params)], ["MACs", "ev-d-macs", fmtInt(b.macs)]
      ].forEach(function (f) { details.appendChild(field(f[0], f[1], f[2])); });
    }

    function card(m, p, biggest) {
      var c = el("div", {"class": "ev-card ev-" + p.kind, "data-part": p.name});
      var title = p.kind === "stage" ? "stage " + (Number(p.name.split(".")[1]) + 1) : p.kind;
      c.appendChild(el("div", {"class": "ev-card-title"}, [el("span", {text: title}),
                                                           el("b", {"class": "ev-op", text: p.op})]));
      var side = Math.max(3, Math.round(56 * p.out_resolution / m.resolution));
      var depth = Math.max(3, Math.round(6 * Math.log2(p.out_channels + 1)));
      c.appendChild(el("div", {"class": "ev-tensor", "title": "output " + shape(p),
                               "style": "width:" + depth + "px;height:" + side + "px"}));
      if (p.kernel !== null) {
        c.appendChild(field("kernel", "ev-kernel", p.kernel + "\u00d7" + p.kernel));
        c.appendChild(field("stride", "ev-stride", String(p.stride)));
      }
      c.appendChild(field("repeats", "ev-repeats", "\u00d7" + p.repeats));
      c.appendChild(field("output", "ev-out", shape(p)));
      c.appendChild(field("params", "ev-params", fmtInt(p.params)));
      c.appendChild(field("MACs", "ev-macs", fmtInt(p.macs)));
      var share = m.macs ? p.macs / m.macs : 0;
      c.appendChild(el("div", {"class": "ev-bar", "title": (100 * share).toFixed(1) + " % of the MACs"},
                       [el("span", {"style": "width:" + (100 * p.macs / biggest).toFixed(1) + "%"})]));
      if (p.detail) { c.appendChild(el("div", {"class": "ev-detail", text: p.detail})); }
      if (p.blocks.length) {
        var chips = el("div", {"class": "ev-blocks"});
        p.blocks.forEach(function (b) {
          var chip = el("button", {"type": "button", "class": "ev-block" + (b.name === selected ? " ev-selected" : ""),
                                   "data-block": b.name, "title": b.name + ": " + fmtInt(b.macs) + " MACs",
                                   text: String(b.index + 1)});
          chip.addEventListener("click", function () { selected = b.name; render(); });
          chips.appendChild(chip);
        });
        c.appendChild(chips);
      }
      return c;
    }

    function render() {
      var m = members[Number(slider.value)];
      label.textContent = m.label + " \u2014 " + m.name;
      factors.textContent = "";
      [["depth d", "ev-f-depth", m.depth], ["width w", "ev-f-width", m.width],
       ["resolution r", "ev-f-res", m.resolution_mult],
       ["input", "ev-input", m.resolution + "\u00d7" + m.resolution + " px"],
       ["blocks", "ev-blocks-total", String(m.blocks)], ["params", "ev-total-params", fmtInt(m.params)],
       ["MACs", "ev-total-macs", fmtInt(m.macs)],
       ["MACs / base", "ev-ratio", m.macs_ratio + " (nominal " + m.nominal_macs_ratio + ")"],
       ["dropout", "ev-dropout", m.dropout]
      ].forEach(function (f) { factors.appendChild(field(f[0], f[1], f[2])); });
      stages.textContent = "";
      var biggest = Math.max.apply(null, m.parts.map(function (p) { return p.macs; })) || 1;
      m.parts.forEach(function (p) { stages.appendChild(card(m, p, biggest)); });
      showDetails(m);
    }

    slider.addEventListener("input", render);
    render();
  }

  window.effnasViewer = {mount: mount, fmtInt: fmtInt, el: el};
  Array.prototype.forEach.call(document.querySelectorAll(".effnas-viewer"), function (root) {
    mount(root, JSON.parse(document.getElementById(root.getAttribute("data-source")).textContent));
  });
}());
