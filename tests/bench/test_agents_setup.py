import re

from bench.agents import CAPACITY, MAX_PROFICIENCY, agent_body, skills_in_config, token_pattern


def test_every_skill_a_routing_configuration_names_is_found() -> None:
    config = {
        "queues": {
            "billing": {"required_skills": {"billing": 3}, "preferred_skills": {"vip": 5}},
            "tech": {
                "escalation": [{"after": 30, "drop_skills": ["linux"], "relax_skills": {"networking": 2}}]
            },
        },
        "intents": [{"name": "refund", "skills": {"refunds": 4}}],
        "languages": {"es": {"keywords": ["hola"], "skills": {"spanish": 4}}},
    }
    assert skills_in_config(config) == {"billing", "vip", "linux", "networking", "refunds", "spanish"}
    assert skills_in_config(None) == set()


def test_bench_agents_have_top_proficiency_and_room_on_every_channel() -> None:
    body = agent_body("bench-1", ["general", "billing", "billing"])
    assert body["skills"] == {"billing": MAX_PROFICIENCY, "general": MAX_PROFICIENCY}
    assert body["capacity"] == CAPACITY and body["capacity"]["voice"] == 1


def test_token_pattern_finds_measured_and_warm_up_tokens_of_this_run_only() -> None:
    pattern = re.compile(token_pattern("ab12"))
    text = "x [bkab12x17] y [bkab12w3] z [bkff00x1]"
    assert pattern.findall(text) == ["bkab12x17", "bkab12w3"]
