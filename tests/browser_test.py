#!/usr/bin/env python3
"""browser_test.py - drive the miles-serve web page in headless Chromium.

Starts build/bin/miles-serve on a free loopback port, then with Selenium:
submits a title with stats, uploads a CSV file, checks the ranked table and
the history, asks "Get ideas" for a topic of the uploaded titles, and saves
screenshots to docs/img/.  Not part of `make test`
(it needs a browser); `make check` runs it through tests/test_browser.sh, which
builds a tiny checkpoint and a pinned Selenium venv.  By hand:

    apt-get install chromium chromium-driver
    /opt/miles-ref/bin/pip install selenium        # or any venv
    /opt/miles-ref/bin/python tests/browser_test.py --checkpoint checkpoints/RUN/best.safetensors \
        --csv data/some.csv [--bin build/bin] [--out docs/img]

Exits non-zero on any failed check.
"""
import argparse
import collections
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def start_server(binary, work, name, args):
    """miles-serve on a free loopback port with args; returns (process, page URL) once it listens."""
    port_file = os.path.join(work, name + ".port")
    log = os.path.join(work, name + ".log")
    proc = subprocess.Popen([binary, "--port", "0", "--port-file", port_file, "-q"] + args, stderr=open(log, "w"))
    for _ in range(600):
        if os.path.exists(port_file) and open(port_file).read().strip():
            return proc, "http://127.0.0.1:%s/" % open(port_file).read().strip()
        if proc.poll() is not None:
            raise SystemExit("server exited: see " + log)
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("server did not start: see " + log)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--csv", required=True, help="CSV to upload (a title column; first --rows rows are used)")
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--calibrated", help="a recalibrated copy of --checkpoint (miles-eval --save-calibrated)")
    ap.add_argument("--prepub", help="a checkpoint trained with --drop-features engagement")
    ap.add_argument("--bin", default=os.environ.get("MILES_BIN", "build/bin"))
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--driver", default="/usr/bin/chromedriver")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="miles_browser_")
    upload = os.path.join(work, "videos.csv")
    with open(a.csv, encoding="utf-8") as f, open(upload, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i > a.rows:
                break
            g.write(line)
    serve = os.path.join(a.bin, "miles-serve")
    server, url = start_server(serve, work, "server", ["-c", a.checkpoint, "--db", os.path.join(work, "miles.db")])
    failures = []

    passes = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        (passes if cond else failures).append(what)

    driver = None
    try:
        opts = Options()
        opts.binary_location = a.chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1200,1500", "--force-device-scale-factor=1"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(a.driver), options=opts)
        wait = WebDriverWait(driver, 60)
        driver.get(url)
        wait.until(lambda d: d.find_element(By.ID, "model-line").text.startswith("model "))
        check("parameters" in driver.find_element(By.ID, "model-line").text, "model line shows the model")
        check(driver.find_element(By.ID, "model-line").text.endswith(" · trained on a split by row"),
              "model line says how the training rows were split")
        check(all(driver.find_element(By.ID, f).is_enabled() for f in ("f-views", "f-likes", "f-comments", "f-duration"))
              and not driver.find_elements(By.CSS_SELECTOR, "#predict-form .unused")
              and driver.find_element(By.ID, "f-creator-rule").text == "",
              "a model with every feature: every field open, none marked unused")

        # 1. one title with stats
        driver.find_element(By.ID, "f-title").send_keys("I tried the 5am routine for 30 days 😱")
        for fid, val in (("f-views", "120000"), ("f-likes", "9000"), ("f-comments", "310"), ("f-duration", "41")):
            driver.find_element(By.ID, fid).send_keys(val)
        driver.find_element(By.ID, "predict-btn").click()
        wait.until(EC.visibility_of_element_located((By.ID, "predict-result")))
        score = driver.find_element(By.ID, "r-score").text
        check(re.fullmatch(r"\d+\.\d%", score) is not None, "score shown as a percentage (%s)" % score)
        check("views" in driver.find_element(By.ID, "r-supplied").text, "supplied features listed")
        check(driver.find_element(By.ID, "r-badge").text in ("viral", "not viral"), "viral badge")
        info = json.load(urllib.request.urlopen(url + "model/info"))
        thr_text = "%.1f%%" % (100 * info["decision_threshold"])
        check(driver.find_element(By.ID, "r-thr-text").text == thr_text, "threshold marker at %s" % thr_text)
        driver.save_screenshot(os.path.join(a.out, "serve_predict.png"))

        # 1b. the same title with explanations: words shaded, features listed, completeness note
        driver.find_element(By.ID, "f-explain").click()
        driver.find_element(By.ID, "predict-btn").click()
        wait.until(EC.visibility_of_element_located((By.ID, "r-explain")))
        words = [w.text for w in driver.find_elements(By.CSS_SELECTOR, "#r-words span")]
        check(len(words) >= 5 and any("routine" in w for w in words), "explain: title words shown (%s)" % words[:8])
        check(len(driver.find_elements(By.CSS_SELECTOR, "#r-feat-table tbody tr")) >= 4,
              "explain: supplied features listed with attributions")
        check("integrated gradients" in driver.find_element(By.ID, "r-explain-note").text, "explain: method note")
        driver.save_screenshot(os.path.join(a.out, "explain_page.png"))
        driver.find_element(By.ID, "f-explain").click()

        # 2. upload a file: ranked table
        driver.find_element(By.ID, "file-input").send_keys(upload)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#file-table tbody tr")) > 0)
        rows = driver.find_elements(By.CSS_SELECTOR, "#file-table tbody tr")
        check(len(rows) == a.rows, "file: %d rows in the ranked table (want %d)" % (len(rows), a.rows))
        scores = [float(r.find_elements(By.TAG_NAME, "td")[2].text.rstrip("%")) for r in rows]
        check(scores == sorted(scores, reverse=True), "file: ranked by score")
        check("videos scored" in driver.find_element(By.ID, "file-status").text, "file: status line")
        driver.execute_script("document.getElementById('file').scrollIntoView()")
        driver.save_screenshot(os.path.join(a.out, "serve_file.png"))

        # 3. history and candidates
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) >= a.rows + 1)
        check(len(driver.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) >= a.rows + 1,
              "history lists the predictions")
        Select(driver.find_element(By.ID, "history-kind")).select_by_value("candidates")
        time.sleep(1.0)
        cand = driver.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")
        cs = [float(r.find_elements(By.TAG_NAME, "td")[2].text.rstrip("%")) for r in cand]
        check(len(cs) == a.rows and cs == sorted(cs, reverse=True), "candidates ranked by score")
        driver.execute_script("document.getElementById('history').scrollIntoView()")
        driver.save_screenshot(os.path.join(a.out, "serve_history.png"))
        # 4. "Get ideas": a topic from the uploaded titles (their most common word), a vibe and a draft
        with open(upload, encoding="utf-8") as f:
            titles = [r["title"] for r in csv.DictReader(f)]
        words = collections.Counter(w.lower() for t in titles for w in re.findall(r"[A-Za-z0-9]+", t) if len(w) > 3)
        topic = sorted(words.items(), key=lambda x: (-x[1], x[0]))[0][0]
        driver.execute_script("document.getElementById('ideas').scrollIntoView()")
        driver.find_element(By.ID, "i-topic").send_keys(topic)
        Select(driver.find_element(By.ID, "i-vibe")).select_by_value("funny")
        driver.find_element(By.ID, "i-draft").send_keys("my first %s video" % topic)
        driver.find_element(By.ID, "ideas-btn").click()
        wait.until(EC.visibility_of_element_located((By.ID, "ideas-result")))
        top = driver.find_elements(By.CSS_SELECTOR, "#i-top tbody tr")
        ts = [float(r.find_elements(By.TAG_NAME, "td")[2].text.rstrip("%")) for r in top]
        check(1 <= len(top) <= 10 and ts == sorted(ts, reverse=True),
              "ideas: top candidates for %r ranked by score (%d)" % (topic, len(top)))
        check(all(re.search(r"(?i)\b%s" % topic, r.find_elements(By.TAG_NAME, "td")[1].text) for r in top),
              "ideas: every top candidate matches the topic")
        pat = driver.find_element(By.ID, "i-patterns").text
        check("Average title length" in pat and "Top words" in pat and topic in pat, "ideas: patterns shown")
        sug = driver.find_elements(By.CSS_SELECTOR, "#i-sugg tbody tr")
        changes = [r.find_elements(By.TAG_NAME, "td")[2].text for r in sug if len(r.find_elements(By.TAG_NAME, "td")) == 4]
        check(len(sug) >= 1 and all(c.startswith("+") for c in changes),
              "ideas: suggestions above the draft (%d)" % len(changes))
        check("my first %s video" % topic in driver.find_element(By.ID, "i-draft-line").text, "ideas: the draft named")
        driver.save_screenshot(os.path.join(a.out, "serve_ideas.png"))
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        check(not logs, "no browser console errors %s" % (logs[:2] if logs else ""))

        # 4. a server with a bearer token (--token-file): the page opened once as /#token=...
        # keeps the token and sends it with every API call
        token = "browser-test-token-0123456789"
        with open(os.path.join(work, "token"), "w") as f:
            f.write(token + "\n")
        server2, url2 = start_server(serve, work, "server2", ["-c", a.checkpoint, "--db", os.path.join(work, "auth.db"),
                                                              "--token-file", os.path.join(work, "token")])
        try:
            driver.get(url2 + "#token=" + token)
            wait.until(lambda d: d.find_element(By.ID, "model-line").text.startswith("model "))
            check("token" not in driver.current_url, "token: removed from the address bar")
            driver.find_element(By.ID, "f-title").send_keys("a title scored with a token")
            driver.find_element(By.ID, "predict-btn").click()
            wait.until(EC.visibility_of_element_located((By.ID, "predict-result")))
            check(re.fullmatch(r"\d+\.\d%", driver.find_element(By.ID, "r-score").text) is not None,
                  "token: /predict answered through the page")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) >= 1)
            check(len(driver.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) >= 1,
                  "token: history readable through the page")
            driver.execute_script("localStorage.removeItem('miles_token')")
        finally:
            server2.terminate()
            server2.wait(timeout=30)

        # 5. a recalibrated checkpoint: the score is on the recalibrated scale, so is the marker
        if a.calibrated:
            server3, url3 = start_server(serve, work, "server3", ["-c", a.calibrated, "--no-db"])
            try:
                cal = json.load(urllib.request.urlopen(url3 + "model/info"))["calibration"]
                want = "%.1f%%" % (100 * cal["decision_threshold_calibrated"])
                driver.get(url3)
                wait.until(lambda d: d.find_element(By.ID, "model-line").text.startswith("model "))
                check("decision threshold %.4f" % cal["decision_threshold_calibrated"]
                      in driver.find_element(By.ID, "model-line").text, "calibrated: the model line's threshold")
                driver.find_element(By.ID, "f-title").send_keys("I tried the 5am routine for 30 days 😱")
                driver.find_element(By.ID, "predict-btn").click()
                wait.until(EC.visibility_of_element_located((By.ID, "predict-result")))
                check(driver.find_element(By.ID, "r-thr-text").text == want and want != thr_text,
                      "calibrated: threshold marker at %s on the recalibrated scale (model scale %s)" % (want, thr_text))
            finally:
                server3.terminate()
                server3.wait(timeout=30)

        # 6. a model without the counts and rates: the fields it cannot use are disabled and say so
        if a.prepub:
            server4, url4 = start_server(serve, work, "server4", ["-c", a.prepub, "--no-db"])
            try:
                driver.get(url4)
                wait.until(lambda d: d.find_element(By.ID, "model-line").text.startswith("model "))
                wait.until(lambda d: not d.find_element(By.ID, "f-views").is_enabled())
                off = [f for f in ("f-views", "f-likes", "f-comments") if not driver.find_element(By.ID, f).is_enabled()]
                notes = driver.find_elements(By.CSS_SELECTOR, "#predict-form .unused")
                check(len(off) == 3 and driver.find_element(By.ID, "f-duration").is_enabled() and len(notes) == 3
                      and all("not used by this model" in n.text for n in notes),
                      "before-publishing model: views, likes, comments disabled and marked; duration open")
                check(driver.find_element(By.ID, "f-creator-rule").text == "(of earlier videos)",
                      "before-publishing model: the creator field asks for the mean of earlier videos (creator_avg_views prior)")
                driver.find_element(By.ID, "f-title").send_keys("my cat learns to skateboard")
                driver.find_element(By.ID, "f-duration").send_keys("28")
                driver.find_element(By.ID, "f-creator").send_keys("250000")
                driver.execute_script("arguments[0].value = '2025-03-07T18:30'", driver.find_element(By.ID, "f-published"))
                driver.find_element(By.ID, "predict-btn").click()
                wait.until(EC.visibility_of_element_located((By.ID, "predict-result")))
                sup = driver.find_element(By.ID, "r-supplied").text.split(", ")
                der = driver.find_element(By.ID, "r-derived").text.split(", ")
                check(set(sup) == {"duration_sec", "creator_avg_views"} and
                      {"upload_hour", "is_weekend", "publish_dayofweek"} <= set(der),
                      "before-publishing model: duration and the creator's views supplied, the publish time's "
                      "hour and weekday derived (%s / %s)" % (sup, der))
                driver.save_screenshot(os.path.join(a.out, "prepub.png"))
            finally:
                server4.terminate()
                server4.wait(timeout=30)
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)
    print("screenshots in", a.out)
    print("browser_test: %d passed, %d failed" % (len(passes), len(failures)))
    if failures or not passes:
        sys.exit(1)


if __name__ == "__main__":
    main()
