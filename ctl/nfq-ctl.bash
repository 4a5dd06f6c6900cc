# SPDX-License-Identifier: MIT
# bash completion for nfq-ctl (installed by meson into bash-completion's
# completionsdir as "nfq-ctl").
# shellcheck disable=SC2207 # COMPREPLY=($(compgen ...)): words never have blanks here

_nfq_ctl()
{
    local cur prev words cword
    _init_completion 2>/dev/null || {
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    }
    local commands="status agents rules reload watch metrics top"
    local cmd="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -c|--control|-n|--ns|-o|--output|-d|--delay|--count|--verdict|--policy|--rule|--proto|--port|--addr)
                ((i++)) ;;
            -*) ;;
            *) cmd=${words[i]}; break ;;
        esac
    done

    case $prev in
        -c|--control)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -o|--output)
            case $cmd in
                watch) COMPREPLY=($(compgen -W "text json" -- "$cur")) ;;
                agents|rules|status|"") COMPREPLY=($(compgen -W "table wide json" -- "$cur")) ;;
                *) COMPREPLY=($(compgen -W "json" -- "$cur")) ;;
            esac
            return ;;
        --verdict)
            COMPREPLY=($(compgen -W "accept drop repeat queue" -- "$cur")); return ;;
        --proto)
            COMPREPLY=($(compgen -W "tcp udp icmp icmpv6 sctp udplite gre esp ah" -- "$cur")); return ;;
        -n|--ns|--policy|--rule|--port|--addr|--count|-d|--delay)
            return ;;
    esac

    if [[ $cur == -* ]]; then
        local opts="-c --control -h --help"
        case $cmd in
            agents|rules|status) opts+=" -o --output -p --pretty -C --compact" ;;
            reload|metrics) opts+=" -o --output -p --pretty -C --compact" ;;
            watch) opts+=" -o --output -n --ns --verdict --policy --rule --proto --port --addr --count --reconnect" ;;
            top) opts+=" -d --delay --once" ;;
            "") opts+=" -V --version" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    [[ -z $cmd ]] && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
}
complete -F _nfq_ctl nfq-ctl
