// Progressive enhancement for the gateway's own pages: everything works without it.
// Ticking both CSR and Administrator shows the warning as it is chosen; the server warns too.
document.querySelectorAll("[data-csr-admin-warning]").forEach(function (box) {
  var warning = box.querySelector("#csr-admin-warning");
  function update() {
    var csr = box.querySelector('input[value="CSR"]');
    var admin = box.querySelector('input[value="Administrator"]');
    warning.hidden = !(csr && admin && csr.checked && admin.checked);
  }
  box.addEventListener("change", update);
  update();
});
// An approved request's page starts the impersonation by itself (the button stays for no-JS).
document.querySelectorAll("form[data-autostart]").forEach(function (form) {
  form.submit();
});
// A waiting approval request's page asks its own JSON form every 3 seconds and reloads once
// the request is decided (no meta refresh: a page that reloads by itself on a timer cannot
// be read with a screen reader). Without JavaScript the page offers "Check again".
document.querySelectorAll('[data-approval][data-status="pending"]').forEach(function () {
  var timer = setInterval(function () {
    fetch(location.pathname, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (found) {
        if (found && found.status && found.status !== "pending") {
          clearInterval(timer);
          location.reload();
        }
      })
      .catch(function () {});
  }, 3000);
});
