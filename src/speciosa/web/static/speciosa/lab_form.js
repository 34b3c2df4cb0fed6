/* The lab form's unit pickers offer only the units of the chosen test (issue 15): each
   option names the tests that accept it in data-labs; a picker names its test select in
   data-units-of. A unit no longer offered is cleared rather than sent for another test. */
(function () {
  "use strict";

  function follow(picker) {
    var test = document.getElementById(picker.getAttribute("data-units-of"));
    if (!test) { return; }
    function apply() {
      var code = test.value;
      Array.prototype.forEach.call(picker.options, function (option) {
        if (!option.value) { return; }
        var offered = (" " + (option.getAttribute("data-labs") || "") + " ").indexOf(" " + code + " ") >= 0;
        option.hidden = !offered;
        option.disabled = !offered;
        if (!offered && option.selected) { picker.value = ""; }
      });
    }
    test.addEventListener("change", apply);
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("select[data-units-of]"), follow);
  });
}());
