"""test_clients.py — `sd serve` through the clients people use, installed from PyPI by run.sh: AUTOMATIC1111's
`webuiapi` (txt2img, img2img with a mask, progress, interrupt, options, model switch) and OpenAI's `openai`
(images.generate); every picture equals the CLI's for the same settings, pixel for pixel. The server asks for auth:
webuiapi signs in with --api-auth, openai with --api-key."""
import io
import os
import threading
import time

import openai
import webuiapi
from PIL import Image

import sdtest as T
from sdtest import Server

W = T.WORK
PROMPT = "a small yellow ring on a black background, top left"


def pixels(img):
    return img.size, img.convert("RGB").tobytes()


def same(img, png_bytes, what):
    ref = Image.open(io.BytesIO(png_bytes))
    a, b = pixels(img), pixels(ref)
    assert a[0] == b[0], "%s: size %s vs the CLI's %s" % (what, a[0], b[0])
    n = sum(1 for x, y in zip(a[1], b[1]) if x != y)
    assert n == 0, "%s: %d of %d values differ from the CLI's" % (what, n, len(a[1]))


def models_dir():
    d = os.path.join(W, "client-models")
    os.makedirs(d, exist_ok=True)
    for name, target in (("shapes", T.DEMO), ("tiny-sd1", os.path.join(T.ROOT, "tests", "golden", "pipeline", "sd1"))):
        if not os.path.lexists(os.path.join(d, name)):
            os.symlink(target, os.path.join(d, name))
    return d


def main():
    srv = Server("--models-dir", models_dir(), "--api-auth", "user:secret", "--api-key", "k3y", "--max-steps", "60", name="clients")
    api = webuiapi.WebUIApi(host="127.0.0.1", port=srv.port, sampler="Euler", steps=3, username="user", password="secret")

    def webui_txt2img():
        r = api.txt2img(prompt=PROMPT, negative_prompt="blue", seed=7, width=64, height=64, cfg_scale=5, steps=3)
        ref = T.cli_render(os.path.join(W, "wa.png"), *T.a1111_cli_args(PROMPT, 7, 3, 64, 64, cfg=5, negative="blue"))
        same(r.image, ref, "webuiapi txt2img")
        assert r.info["all_seeds"] == [7] and r.parameters["steps"] == 3, r.info
        assert r.image.info.get("parameters", "").startswith(PROMPT + "\nNegative prompt: blue\nSteps: 3, Sampler: Euler"), r.image.info
        # the default sampler of the client ("Euler a") and batches, against `sd -b 2`
        r = api.txt2img(prompt=PROMPT, seed=30, width=32, height=32, cfg_scale=5, steps=3, sampler_name="Euler a", batch_size=2)
        refs = T.cli_render(os.path.join(W, "wa-b.png"), *T.a1111_cli_args(PROMPT, 30, 3, 32, 32, cfg=5, sampler="euler_a"), "-b", "2", "--batch-size", "2")
        for i in range(2):
            same(r.images[i], refs[i], "webuiapi batch image %d" % i)
        T.ok("webuiapi_txt2img_equals_cli")

    def webui_img2img_mask():
        init = Image.open(io.BytesIO(T.cli_render(os.path.join(W, "wa-init.png"), *T.a1111_cli_args(PROMPT, 8, 3, 64, 64))))
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (8, 24, 56, 60))
        mask.save(os.path.join(W, "wa-mask.png"))
        # webuiapi's defaults: mask_blur 4, inpainting_fill 0 (fill), inpaint_full_res True, padding 0
        r = api.img2img(images=[init], mask_image=mask, denoising_strength=0.7, prompt="a large green triangle on a white background, bottom right",
                        seed=12, width=64, height=64, cfg_scale=5, steps=4)
        ref = T.cli_render(os.path.join(W, "wa-i2i.png"), *T.a1111_cli_args("a large green triangle on a white background, bottom right", 12, 4, 64, 64, cfg=5),
                           "-i", os.path.join(W, "wa-init.png"), "--mask", os.path.join(W, "wa-mask.png"), "--strength", "0.7",
                           "--mask-blur", "4", "--masked-content", "fill", "--inpaint-only-masked")
        same(r.image, ref, "webuiapi img2img (its inpainting defaults)")
        r = api.img2img(images=[init], mask_image=mask, mask_blur=0, inpainting_fill=1, inpaint_full_res=False, inpainting_mask_invert=1,
                        denoising_strength=0.7, prompt="a large green triangle on a white background, bottom right",
                        seed=12, width=64, height=64, cfg_scale=5, steps=4)
        Image.eval(mask, lambda v: 255 - v).save(os.path.join(W, "wa-mask-inv.png"))
        ref = T.cli_render(os.path.join(W, "wa-i2i-inv.png"), *T.a1111_cli_args("a large green triangle on a white background, bottom right", 12, 4, 64, 64, cfg=5),
                           "-i", os.path.join(W, "wa-init.png"), "--mask", os.path.join(W, "wa-mask-inv.png"), "--strength", "0.7",
                           "--masked-content", "original")
        same(r.image, ref, "webuiapi img2img (inverted, whole picture, original)")
        T.ok("webuiapi_img2img_with_mask_equals_cli")

    def webui_progress_interrupt():
        box = {}
        t = threading.Thread(target=lambda: box.update(r=api.txt2img(prompt=PROMPT, seed=1, width=64, height=64, steps=40, cfg_scale=5)))
        t.start()
        seen = None
        deadline = time.time() + 300
        while time.time() < deadline:
            p = api.get_progress()
            if p["state"]["sampling_step"] >= 1 and p["current_image"]:
                seen = p
                break
            time.sleep(0.1)
        assert seen, "no progress with a preview"
        assert 0 < seen["progress"] <= 1 and seen["eta_relative"] > 0 and seen["state"]["sampling_steps"] == 40, seen
        Image.open(io.BytesIO(T.b64png(seen["current_image"]))).load()
        api.interrupt()
        t.join(300)
        assert not t.is_alive(), "the interrupted request did not return"
        r = box["r"]
        assert r.info["interrupted"] and r.images == [], r.info.get("interrupted")
        T.ok("webuiapi_progress_and_interrupt")

    def webui_options():
        o = api.get_options()
        assert o["sd_model_checkpoint"] == "shapes", o
        assert api.util_get_model_names() == ["shapes", "tiny-sd1"], api.util_get_model_names()
        assert "Euler a" in api.util_get_sampler_names() and "Karras" in [s["label"] for s in api.get_schedulers()]
        api.util_set_model("tiny-sd1")
        assert api.util_get_current_model() == "tiny-sd1", api.util_get_current_model()
        r = api.txt2img(prompt=PROMPT, seed=5, width=32, height=32, cfg_scale=5, steps=2)
        ref = T.cli_render(os.path.join(W, "wa-tiny.png"), "-m", os.path.join(models_dir(), "tiny-sd1"), *T.a1111_cli_args(PROMPT, 5, 2, 32, 32, cfg=5))
        same(r.image, ref, "after the switch to tiny-sd1")
        api.set_options({"sd_model_checkpoint": "shapes"})
        assert api.get_options()["sd_model_checkpoint"] == "shapes"
        T.ok("webuiapi_options_switch_the_model")

    def openai_generate():
        client = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % srv.port, api_key="k3y", max_retries=0, timeout=600)
        r = client.images.generate(prompt=PROMPT, n=2, size="64x64", response_format="b64_json", extra_body={"seed": 21, "steps": 3})
        refs = T.cli_render(os.path.join(W, "oa-client.png"), "-p", PROMPT, "-s", "21", "-b", "2", "-W", "64", "-H", "64", "--steps", "3")
        assert len(r.data) == 2
        for i in range(2):
            same(Image.open(io.BytesIO(T.b64png(r.data[i].b64_json))), refs[i], "openai image %d" % i)
        r = client.images.generate(prompt=PROMPT, model="tiny-sd1", size="32x32", extra_body={"seed": 4, "steps": 2})
        ref = T.cli_render(os.path.join(W, "oa-tiny.png"), "-m", os.path.join(models_dir(), "tiny-sd1"), "-p", PROMPT, "-s", "4", "-W", "32", "-H", "32", "--steps", "2")
        same(Image.open(io.BytesIO(T.b64png(r.data[0].b64_json))), ref, "openai model=tiny-sd1")
        try:
            client.images.generate(prompt=PROMPT, size="65x64")
            raise AssertionError("size 65x64 was taken")
        except openai.BadRequestError as e:
            assert e.status_code == 400 and e.body["param"] == "size", e.body
        try:
            openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % srv.port, api_key="wrong", max_retries=0).images.generate(prompt=PROMPT)
            raise AssertionError("a wrong key was taken")
        except openai.AuthenticationError as e:
            assert e.status_code == 401
        T.ok("openai_images_generate_equals_cli")

    try:
        for fn in (webui_txt2img, webui_img2img_mask, webui_progress_interrupt, webui_options, openai_generate):
            T.run_case(fn)
    finally:
        rc = srv.stop()
    T.check("clients_server_exits_0", rc == 0, "exit status %d" % rc)
    T.finish(os.environ.get("TEST_LABEL", "server-clients"))


if __name__ == "__main__":
    main()
