// Progressive enhancement only: every page works without this script.
(function () {
  "use strict";
  // Trello's authorize page returns the token in the fragment (#token=…), which never
  // reaches the server: post it to the token form with the one-time nonce the setup
  // page's authorize link carried (the server refuses a post without it), then forget
  // it from the address. A link without a nonce was not made by our setup page.
  var form = document.querySelector("form[data-from-fragment]");
  if (form && form.querySelector("input[name=nonce]").value) {
    var m = /[#&]token=([^&]+)/.exec(window.location.hash);
    if (m) {
      form.querySelector("input[name=token]").value = decodeURIComponent(m[1]);
      history.replaceState(null, "", window.location.pathname);
      form.submit();
    }
  }
  // Live export progress: poll the job and update the bar; reload once it has finished.
  var job = document.getElementById("job");
  if (job && job.dataset.finished !== "true") {
    var tick = function () {
      fetch("/api/v1/exports/" + job.dataset.job, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          var p = j.progress || {};
          document.getElementById("job-state").textContent = j.state;
          document.getElementById("job-phase").textContent = p.phase || "queued";
          // Reading and planning have no total yet: the bar shows activity and the count
          // how many so far, as pages.rs's progress_count does; never "12 / 0".
          var bar = document.getElementById("job-progress");
          var done = p.done || 0;
          var known = typeof p.total === "number";
          if (known) { bar.max = p.total; bar.value = done; } else { bar.removeAttribute("value"); }
          document.getElementById("job-count").textContent =
            known ? done + " / " + p.total : (done > 0 ? done + " so far" : "");
          if (j.state === "done" || j.state === "failed") { window.location.reload(); }
          else { setTimeout(tick, 500); }
        })
        .catch(function () { setTimeout(tick, 2000); });
    };
    setTimeout(tick, 300);
  }
})();
