# The two README commands: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app bot
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup migrate demo worker scheduler chat clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

setup: $(VENV)/.installed

migrate: setup
	$(FLASK) db upgrade

demo: migrate
	$(FLASK) demo load --if-empty

run: demo
	@echo ""
	@echo "  银龄通 webhook: http://$(HOST):$(PORT)/wechat  (sandbox mode unless WECHAT_APPID/SECRET are set)"
	@echo "  Chat with it from a second terminal:  make chat   (or: $(FLASK) chat --openid demo-cadre-1)"
	@echo "  Staff console: http://$(HOST):$(PORT)/console  (set a password: $(FLASK) staff password 赵敏)"
	@echo ""
	$(BIN)/gunicorn --workers 1 --threads 8 --bind $(HOST):$(PORT) --access-logfile - "bot:create_app()"

test: setup
	$(BIN)/python -m pytest -q -rs --timeout=600 $(PYTEST_ARGS)

chat: setup
	$(FLASK) chat --openid $${OPENID:-demo-cadre-1} --url http://$(HOST):$(PORT)/wechat

worker: setup
	$(FLASK) worker

scheduler: setup
	$(FLASK) scheduler

clean:
	rm -rf $(VENV) var .pytest_cache
