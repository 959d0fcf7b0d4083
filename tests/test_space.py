"""The web demo (space/app.py) in a real browser: Debian's chromium, headless, driven by Selenium through Debian's
chromium-driver. A real ELPV cell and the example module are uploaded through the page, and the grades it shows
are predict's and inspect's; bad uploads get a message on the page and leave the app working."""
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from timm_csba.hub import seed_cache
from timm_csba.inference import load_model, predict_images
from timm_csba.inspect import main as inspect_main

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = shutil.which('chromium'), shutil.which('chromedriver')


def _app():
    spec = importlib.util.spec_from_file_location('space_app', ROOT / 'space' / 'app.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def app():
    return _app()


@pytest.fixture(scope='module')
def page(app, tmp_path_factory):
    """The demo on a free local port, open in headless chromium; its screenshots go to the pytest temp folder."""
    if not (CHROMIUM and DRIVER):
        pytest.skip('the browser test needs Debian\'s chromium and chromium-driver: apt-get install -y chromium '
                    'chromium-driver')
    demo = app.build_demo()
    port = _free_port()
    demo.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True, quiet=True)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1400,1800'):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        driver.get(f'http://127.0.0.1:{port}/')
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#cell-file input[type=file]'))
        driver.screenshots = tmp_path_factory.mktemp('screenshots')
        yield driver
    finally:
        driver.quit()
        demo.close()


def _upload(driver, component: str, path: Path) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#{component} input[type=file]').send_keys(str(path.resolve()))


def _shown_grades(driver) -> dict:
    """The probability of each grade as the page's gr.Label holds it (its meters' values)."""
    meters = driver.find_elements(By.CSS_SELECTOR, '#cell-grades meter')
    return {m.get_attribute('aria-label'): float(m.get_attribute('value')) for m in meters}


def _clear(driver, component: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#{component} button[aria-label="Clear"]').click()


def _wait_for_text(driver, text: str, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(lambda d: text in d.find_element(By.TAG_NAME, 'body').text)


def test_a_real_cell_uploaded_through_the_page_gets_predicts_grades(app, page):
    cell = app.EXAMPLE_CELLS[0]
    expected = predict_images(load_model(app.default_model()), [cell], top_k=4)[0]
    _upload(page, 'cell-file', cell)
    WebDriverWait(page, 60).until(lambda d: len(_shown_grades(d)) == 4)
    shown = _shown_grades(page)
    assert max(shown, key=shown.get) == expected['label']
    for row in expected['top_k']:
        assert shown[row['label']] == pytest.approx(row['probability'], abs=1e-5)
    assert page.find_element(By.CSS_SELECTOR, '[data-testid="label-output-value"]').text == expected['label']
    WebDriverWait(page, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#cell-heat img'))
    page.save_screenshot(str(page.screenshots / 'cell.png'))
    _clear(page, 'cell-file')


def test_the_example_module_uploaded_through_the_page_gets_inspects_grades(app, page, tmp_path, capsys):
    inspect_main([str(app.EXAMPLE_MODULE), '--grid', '6x10', '--model', app.default_model(), '--out',
                  str(tmp_path)])
    expected = capsys.readouterr().out.splitlines()[0].split(': ', 1)[1]  # 'module_6x10: 6x10 cells: ...'
    page.find_element(By.XPATH, '//button[@role="tab" and contains(., "Module")]').click()
    _upload(page, 'module-file', app.EXAMPLE_MODULE)
    WebDriverWait(page, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#module-file a, #module-file td'))
    page.find_element(By.ID, 'module-run').click()
    WebDriverWait(page, 120).until(
        lambda d: d.find_element(By.CSS_SELECTOR, '#module-summary textarea').get_attribute('value'))
    assert page.find_element(By.CSS_SELECTOR, '#module-summary textarea').get_attribute('value') == expected
    WebDriverWait(page, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#module-map img'))
    table = page.find_element(By.ID, 'module-cells').text
    assert all(name in table for name in ('row', 'col', 'grade', 'p_functional', 'p_defective'))
    page.save_screenshot(str(page.screenshots / 'module.png'))
    _clear(page, 'module-file')
    page.find_element(By.XPATH, '//button[@role="tab" and contains(., "Cell")]').click()


def test_bad_uploads_get_a_message_on_the_page_and_the_app_goes_on(app, page, tmp_path):
    fake = tmp_path / 'notes.png'
    fake.write_text('a text file renamed .png')
    _upload(page, 'cell-file', fake)
    _wait_for_text(page, 'notes.png cannot be read as an image: no image format PIL reads')
    assert 'Traceback' not in page.page_source
    page.save_screenshot(str(page.screenshots / 'not_an_image.png'))
    _clear(page, 'cell-file')

    page.find_element(By.XPATH, '//button[@role="tab" and contains(., "Module")]').click()
    page.find_element(By.ID, 'module-run').click()  # nothing uploaded
    _wait_for_text(page, 'Upload an EL module image first')
    dark = tmp_path / 'dark.png'
    Image.new('L', (640, 480), 3).save(dark)
    _upload(page, 'module-file', dark)
    WebDriverWait(page, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#module-file a, #module-file td'))
    page.find_element(By.ID, 'module-run').click()
    _wait_for_text(page, 'no module found: the image is all dark')
    _clear(page, 'module-file')

    page.find_element(By.XPATH, '//button[@role="tab" and contains(., "Cell")]').click()
    _upload(page, 'cell-file', app.EXAMPLE_CELLS[1])  # still alive: a real cell is graded after the errors
    WebDriverWait(page, 60).until(lambda d: len(_shown_grades(d)) == 4)


def test_the_space_layout_runs_with_the_package_beside_the_app_and_the_weights_from_the_hub(tmp_path):
    """space/README.md's deploy: the folder, the timm_csba package beside app.py and the example module; there the
    model is the published tag, here read from an HF cache seeded from hub/ with the Hub offline."""
    layout = shutil.copytree(ROOT / 'space', tmp_path / 'space')
    shutil.copytree(ROOT / 'timm_csba', layout / 'timm_csba', ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copyfile(ROOT / 'examples' / 'module_6x10.png', layout / 'examples' / 'module_6x10.png')
    cache = tmp_path / 'hf_cache'
    seed_cache([ROOT / 'hub' / 'csba_squeeze.elpv'], cache_dir=cache)
    result = subprocess.run([sys.executable, '-c', (
        'import app, timm_csba\n'
        'demo = app.Demo(app.default_model())\n'
        'grades, heat = demo.grade_cell(str(app.EXAMPLE_CELLS[0]))\n'
        'print(app.default_model(), timm_csba.__file__, app.EXAMPLE_MODULE, max(grades, key=grades.get))\n')],
        cwd=layout, capture_output=True, text=True, env=dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    model, package, example, top = result.stdout.split()
    assert model == 'csba_squeeze.elpv' and Path(package).parent == layout / 'timm_csba'
    assert Path(example) == layout / 'examples' / 'module_6x10.png' and top == 'defective'
